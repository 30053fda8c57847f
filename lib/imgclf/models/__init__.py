"""Model builders: functional Keras models with their shapes in the docstrings."""
