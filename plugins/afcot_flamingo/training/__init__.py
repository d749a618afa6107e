"""The model-agnostic training side: examples, the data path, the loop; a student adapter per model."""
