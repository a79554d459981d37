"""ALIGN's rules, one module each; every module here declares one ``RULE`` (filters/rule.py)
and filters/table.py finds them all. A new rule of an existing stage is one new module here
(and its test): the filter job, its flags, FilterConfig, the docs table and the report read it."""
