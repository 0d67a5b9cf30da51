"""Faces in ordinary photos, the real-photo path of test.py --real_world and demo.py.

detect.py finds faces and landmarks (MTCNN); align.py frames each as the
generator was trained (the 128 frame, the generator's crop); paste.py blends a
super-resolved face back; sizes.py checks what a photo and its output may be;
photo.py runs them over one photo (`super_resolve_photo`, `PhotoResult`).
prepare.py and prepare_folder.py make training faces of photos
(scripts.prepare_faces); bench.py measures the path (scripts.real_world_bench).
"""
