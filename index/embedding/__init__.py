"""The embedding model: the bundled all-MiniLM-L6-v2 on ONNX Runtime or torch, and its ONNX graph."""
