"""nn.init: parameter initialisation as torch does it."""
