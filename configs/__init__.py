"""The bundled job configs (``dtorch-run digits_mlp``): YAML files installed with dtorch as dtorch.launcher.configs."""
