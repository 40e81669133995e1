"""datatrove PipelineSteps, one file per stage (docs/pipeline.md)."""
