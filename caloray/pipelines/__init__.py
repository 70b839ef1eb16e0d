"""Ray-side pipelines: the edges where pure caloray functions meet Ray Data and files."""
