"""Independent references the tests share: the released code's steps, written with OpenCV alone
(never the product's own helpers), so a test compares the product with something else."""
import cv2


def read_rgb(path):
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def released_hr(path):
    """The released test recipe: largest centred square, 128x128 INTER_LINEAR, RGB."""
    image = read_rgb(path)
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return cv2.resize(image[top:top + side, left:left + side], (128, 128), interpolation=cv2.INTER_LINEAR)
