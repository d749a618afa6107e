"""The students: Audio Flamingo 3 (transformers) and Audio Flamingo 2 trainers."""
