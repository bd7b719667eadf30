"""The batch-script template ``dtorch-run submit`` renders (job.sbatch), installed as dtorch.launcher.slurm."""
