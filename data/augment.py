"""Training augmentation of one HR face, with stateless random ops.

Every random decision is drawn from a `seed` tensor of shape [2] with the
`tf.random.stateless_*` ops, so an element's augmentation depends only on the
seed it is given (the pipeline derives it from (run seed, epoch, element
position)): a resumed run reproduces it exactly, whatever ran before.

Order: random crop of `crop_size` (when the image is larger) -> horizontal
flip with p=0.5 -> with p=0.5 a rotation by 90, 180 or 270 degrees (equally
likely), counter-clockwise like `np.rot90`. The released code rotated with
`cv2.warpAffine` about (64, 64), which shifts the result by one pixel and
leaves a black row/column; `tf.image.rot90` is the exact rotation it meant.
"""
import tensorflow as tf

_NUM_SEEDS = 5  # crop top, crop left, flip, rotate?, quarter turns


def augment_decisions(seed, height, width, crop_size=None, flip=True, rotate=True):
    """The random choices `augment` makes for `seed` on a height x width image.

    Returns a dict of int32/bool scalar tensors: `top`, `left` (crop offsets,
    0 when there is no crop), `flip` (bool), `k` (quarter turns, 0..3; 0 when
    not rotated). Disabled operations give 0 / False whatever the seed.
    """
    seeds = tf.random.experimental.stateless_split(tf.convert_to_tensor(seed), _NUM_SEEDS)
    height = tf.convert_to_tensor(height, tf.int32)
    width = tf.convert_to_tensor(width, tf.int32)
    if crop_size is None:
        top = left = tf.constant(0, tf.int32)
    else:
        top = tf.random.stateless_uniform([], seeds[0], 0, height - crop_size + 1, dtype=tf.int32)
        left = tf.random.stateless_uniform([], seeds[1], 0, width - crop_size + 1, dtype=tf.int32)
    if flip:
        do_flip = tf.random.stateless_uniform([], seeds[2]) < 0.5
    else:
        do_flip = tf.constant(False)
    if rotate:
        turn = tf.random.stateless_uniform([], seeds[3]) < 0.5
        quarter = tf.random.stateless_uniform([], seeds[4], 1, 4, dtype=tf.int32)
        k = tf.where(turn, quarter, 0)
    else:
        k = tf.constant(0, tf.int32)
    return {"top": top, "left": left, "flip": do_flip, "k": k}


def augment(image, seed, crop_size=None, flip=True, rotate=True):
    """Augmented copy of one image [H, W, C] (any dtype; values unchanged).

    crop_size: side of the random square crop (None or >= H, W: no crop; the
    crop must fit). flip / rotate: False disables that operation.
    Returns [crop_size, crop_size, C] (or [H, W, C] without a crop).
    """
    image = tf.convert_to_tensor(image)
    shape = tf.shape(image)
    static = image.shape
    if crop_size is not None and static[0] is not None and static[1] is not None \
            and crop_size >= static[0] and crop_size >= static[1]:
        if crop_size != static[0] or crop_size != static[1]:
            raise ValueError(f"crop_size {crop_size} does not fit an image of {static[0]}x{static[1]}")
        crop_size = None
    d = augment_decisions(seed, shape[0], shape[1], crop_size, flip, rotate)
    if crop_size is not None:
        image = image[d["top"]:d["top"] + crop_size, d["left"]:d["left"] + crop_size]
    if flip:
        image = tf.cond(d["flip"], lambda: tf.reverse(image, axis=[1]), lambda: image)
    if rotate:
        image = tf.image.rot90(image, d["k"])
    if crop_size is not None:
        image = tf.ensure_shape(image, [crop_size, crop_size, static[2]])
    elif static[0] is not None and static[0] == static[1]:
        image = tf.ensure_shape(image, static)  # square: rotation keeps the shape
    return image
