"""The video path: `python test.py --real_world --test_path clip.mp4` super-resolves the faces of every frame.

io.py reads and writes video (PyAV, frame by frame); tracks.py links faces across frames; clip.py runs
the real-photo path over a video.
"""
