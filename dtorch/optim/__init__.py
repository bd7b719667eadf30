"""dtorch.optim: optimizers and learning-rate schedulers with torch's update rules."""
