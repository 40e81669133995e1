"""datatrove PipelineSteps, one file per stage (design §7)."""
