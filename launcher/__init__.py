"""dtorch-run: YAML config -> validated, composed config -> mpiexec / srun / sbatch -> a job's main(config).

Installed as dtorch.launcher (with configs/ and slurm/job.sbatch as package data); see launcher/README.md for
the command line and the config schema.
"""
