"""Super-resolve faces with a trained EIPNet generator and measure the results.

    python test.py                                   # sample faces, default checkpoint
    python test.py --weight_path checkpoint/CelebA   # folder with G_weight.ckpt or generator.weights.h5
    python test.py --test_path LR_DIR --lr_input --image_save_path /abs/out
    python test.py --no_fr --no_vif --no_tar_algo --no_tar_net --no_brisque   # PSNR/SSIM only (fast)
    python test.py --test_path ../shared/data/celeba-unseen --degradation jpeg   # strangers, JPEG'd input
    python test.py --degradation area --blur_sigma 1 --noise_sigma 3 --jpeg_quality 60   # blurred, noisy, JPEG'd

Each output is the generator's, corrected to agree with its 16x16 input
(data.degradation.match_input); --raw_output keeps the generator's own, as
the paper scores it. Writes <stem>_SR.png and <stem>_LR.png per image, comparison.png, summary.json
and (HR mode) metrics.csv into <checkpoint_path>/<save_path>/<image_save_path>,
or into a new run_N sub-folder of it when it already holds results (see
--overwrite). HR mode measures PSNR/SSIM (RGB and Y) and, unless switched off,
the paper's FR-PSNR/FR-SSIM, VIF, identity TAR and BRISQUE, each also for
bicubic, and rank-1 identification among the people of --test_path (SR,
bicubic, HR) when its faces belong to several identities; every mean and SR-bicubic
difference with its 95% interval, by bootstrap over those people, else over faces
(metrics.intervals).
Unreadable images are reported and skipped.
"""
from options.test_options import TestOptions
from utils import start_tensorflow


def main(argv=None):
    """Parse `argv` (sys.argv's if None), start TensorFlow, super-resolve and measure; returns the summary."""
    opt = TestOptions().parse(argv)  # --gpu_ids must reach CUDA before TensorFlow loads
    start_tensorflow()
    from evaluation.run import run

    return run(opt)


if __name__ == "__main__":
    main()
