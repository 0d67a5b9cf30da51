"""Deployment: exported generators (SavedModel, TFLite), the int8 model of test.py --int8, and
`inference.load_inference`, which runs any of them or Keras weights through one interface."""
