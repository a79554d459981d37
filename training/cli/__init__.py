"""The trainer's command lines (align-vocab, align-train, align-eval, align-embed).

Each module parses and checks its flags, then imports its command's TensorFlow/Keras work
(training/vocab.py, train.py, evaluate.py, embed.py): ``--help`` and usage errors come
before TensorFlow's seconds of import and its start-up logs (commandline/flags.py).
"""
