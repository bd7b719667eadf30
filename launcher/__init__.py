"""dtorch-run: YAML config -> validated, composed config -> mpiexec / srun / sbatch -> a job's main(config).

See launcher/README.md for the command line and the config schema.
"""
