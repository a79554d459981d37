"""What a person runs beside the jobs: the synthetic web, its server, reports, the demo."""
