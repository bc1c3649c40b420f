"""Hardware RAID controllers: one parser module per vendor tool, one shared model."""
