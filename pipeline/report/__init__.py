"""The report of a filter run (align-filter --stats): the runs of its curation, what each rule
removed, the rules against a ground truth, plots, Markdown and HTML. Beside the filter job,
which imports it; the demo (tools/) reads it from here too."""
