"""The operator's tools behind the panel's Models and Data pages, without the web: background
jobs with progress, the feed monitor, catalog coverage and the models' live scores."""
