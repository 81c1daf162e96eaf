"""Lightning glue: the LightningModules of every trained network, the trainer factory with resume, relabelling."""
