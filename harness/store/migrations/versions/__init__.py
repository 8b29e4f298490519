"""One module per schema version; revision '000N' builds version N from version N-1."""
