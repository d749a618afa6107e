"""Built-in input and output: WebDataset shards and JSONL manifests of audio files."""
