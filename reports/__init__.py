"""Report generation (installed as ``hwsim.reports``): DataFrames of runs to figures, Markdown, HTML."""
