"""Input and output: data sets, SPICE netlists, HDF5 run files (one module per format)."""
