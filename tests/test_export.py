"""Exported generators (SavedModel, TFLite fp32/int8) against the Keras model, and the benchmark script.

One module-scoped export through scripts.export (random weights with the RGB
head scaled so that the output spans roughly the [0, 255] range, which makes
the 0.5 bound meaningful) serves every round-trip test.
"""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from conftest import ROOT
from data.degradation import degrade
from data.images import list_images, prepare_hr, read_image
from deploy import export
from metrics.quality import psnr
from models.checkpoint import load_generator, save_generator
from models.generator import build_generator
from utils import to_uint8

TEST_FACES = os.path.join(ROOT, "datasets", "test")
TRAIN_FACES = os.path.join(ROOT, "datasets", "train")
TFLITE_BATCH = 2  # fixed batch of the exported TFLite files: predict() must chunk and pad
# PSNR of int8 SR against fp32 SR on the sample faces. Measured 45.2 dB on
# this fixture (47.3 dB on a partly trained generator, 62 dB on unscaled random
# weights). 35 dB is an RMS error under 4.5 grey levels: loose enough for
# calibration noise, while a broken quantisation (a wrong scale, a clipped
# range, an unquantised path) lands far below.
INT8_MIN_PSNR_DB = 35.0


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from scripts import export as export_script

    tmp = tmp_path_factory.mktemp("export")
    tf.keras.utils.set_random_seed(3)
    g = build_generator()
    rgb = g.rgb
    rgb.kernel.assign(rgb.kernel * 20.0)
    rgb.bias.assign(tf.fill(rgb.bias.shape, 128.0))
    weights = str(tmp / "generator.weights.h5")
    save_generator(g, weights)
    out = tmp / "out"
    export_script.main(["--weight_path", weights, "--output", str(out), "--int8",
                        "--representative_path", TRAIN_FACES, "--batch_size", str(TFLITE_BATCH)])
    generator = load_generator(weights)
    hr = np.stack([prepare_hr(read_image(p), 128, 128) for p in list_images(TEST_FACES)])
    lr = degrade(hr).numpy().astype(np.float32)
    sr, *edges = generator(lr, training=False)
    return {"dir": out, "weights": weights, "generator": generator, "lr": lr, "hr": hr,
            "sr": sr.numpy(), "edges": [e.numpy() for e in edges]}


def test_export_writes_the_files(exported):
    out = exported["dir"]
    assert (out / export.SAVED_MODEL_DIR / export.SAVED_MODEL_PB).is_file()
    assert (out / export.TFLITE_FILES["float32"]).is_file()
    assert (out / export.TFLITE_FILES["int8"]).is_file()
    # int8 weights: about a quarter of the float file.
    size = {k: (out / export.TFLITE_FILES[k]).stat().st_size for k in ("int8", "float32")}
    assert size["int8"] < 0.3 * size["float32"]
    sr = exported["sr"]
    assert sr.min() < 64 and sr.max() > 192, "fixture output should span the pixel range"


def test_saved_model_matches_keras(exported):
    model = export.load_exported(str(exported["dir"] / export.SAVED_MODEL_DIR))
    assert isinstance(model, export.SavedModelInference) and model.name == "savedmodel"
    sr, edges = model.predict(exported["lr"])
    assert sr.shape == (8, 128, 128, 3) and sr.dtype == np.float32
    assert np.abs(sr - exported["sr"]).max() <= 0.5
    assert [e.shape for e in edges] == [e.shape for e in exported["edges"]]
    for got, want in zip(edges, exported["edges"]):
        assert np.abs(got - want).max() <= 0.5


def test_saved_model_serving_signatures_take_uint8_and_float(exported):
    loaded = tf.saved_model.load(str(exported["dir"] / export.SAVED_MODEL_DIR))
    lr = exported["lr"][:3]  # integer-valued: the uint8 input is the same image
    float_out = loaded.signatures["serving_default"](lr=tf.constant(lr))
    assert set(float_out) == {"sr"}
    uint8_out = loaded.signatures["serving_uint8"](lr=tf.constant(lr.astype(np.uint8)))
    assert uint8_out["sr_uint8"].dtype == tf.uint8
    assert np.abs(uint8_out["sr"].numpy() - float_out["sr"].numpy()).max() <= 1e-3
    np.testing.assert_array_equal(uint8_out["sr_uint8"].numpy(), to_uint8(uint8_out["sr"].numpy()))
    assert np.abs(float_out["sr"].numpy() - exported["sr"][:3]).max() <= 0.5
    # Fully convolutional: another LR size works too.
    assert loaded.signatures["serving_default"](lr=tf.zeros([1, 8, 12, 3]))["sr"].shape == (1, 64, 96, 3)


def test_tflite_fp32_matches_keras(exported):
    model = export.load_exported(str(exported["dir"] / export.TFLITE_FILES["float32"]))
    assert isinstance(model, export.TFLiteInference) and model.name == "tflite"
    assert model.batch_size == TFLITE_BATCH
    sr, edges = model.predict(exported["lr"])
    assert edges is None
    assert sr.shape == (8, 128, 128, 3) and sr.dtype == np.float32
    assert np.abs(sr - exported["sr"]).max() <= 0.5
    # An odd count: the last chunk is padded and the padding dropped.
    odd, _ = model.predict(exported["lr"][:3])
    assert odd.shape == (3, 128, 128, 3)
    assert np.abs(odd - exported["sr"][:3]).max() <= 0.5


def test_tflite_int8_is_quantised_and_close_to_fp32(exported):
    path = str(exported["dir"] / export.TFLITE_FILES["int8"])
    model = export.load_exported(path)
    interpreter = model.interpreter
    dtypes = {t["index"]: t["dtype"] for t in interpreter.get_tensor_details()}
    ops = interpreter._get_ops_details()
    convs = [op for op in ops if op["op_name"] in ("CONV_2D", "TRANSPOSE_CONV")]
    assert len(convs) == 8 + 3  # Conv1, 6 trunk convs, RGB; 3 deconvs (edge heads dropped)
    for op in convs:  # the activation input of every (transposed) conv is int8
        data_input = op["inputs"][2] if op["op_name"] == "TRANSPOSE_CONV" else op["inputs"][0]
        assert dtypes[data_input] == np.int8, op
    pools = [op for op in ops if op["op_name"] == "AVERAGE_POOL_2D"]
    assert len(pools) == 3 and all(dtypes[op["inputs"][0]] == np.float32 for op in pools)

    sr, edges = model.predict(exported["lr"])
    assert edges is None and sr.shape == (8, 128, 128, 3)
    ref = exported["sr"]
    agreement = np.mean([psnr(to_uint8(sr[i]), to_uint8(ref[i])) for i in range(len(sr))])
    print(f"int8 vs fp32 PSNR on the sample faces: {agreement:.2f} dB")
    assert agreement > INT8_MIN_PSNR_DB, f"int8 vs fp32 PSNR {agreement:.1f} dB"


def test_tflite_runs_other_input_sizes(exported):
    """test.py --real_world feeds faces at their own size (22 px here); a fixed-size TFLite file must follow."""
    generator = exported["generator"]
    crops = np.stack([exported["hr"][i, 40:62, 50:72] for i in range(3)]).astype(np.float32)
    want = generator(crops, training=False)[0].numpy()
    for key, bound in (("float32", 0.5), ("int8", None)):
        model = export.load_exported(str(exported["dir"] / export.TFLITE_FILES[key]))
        got, _ = model.predict(crops)
        assert got.shape == (3, 176, 176, 3)
        if bound is not None:
            assert np.abs(got - want).max() <= bound
        else:
            assert np.mean([psnr(to_uint8(g), to_uint8(w)) for g, w in zip(got, want)]) > INT8_MIN_PSNR_DB
        # and back to the exported size, padded to its fixed batch
        again, _ = model.predict(exported["lr"][:3])
        assert again.shape == (3, 128, 128, 3)
        if bound is not None:
            assert np.abs(again - exported["sr"][:3]).max() <= bound
    with pytest.raises(export.ExportError, match="input"):
        model.predict(np.zeros((1, 16, 16, 1), np.float32))


def test_loader_errors_are_one_line(tmp_path):
    with pytest.raises(export.ExportError, match="no TFLite file"):
        export.load_exported(str(tmp_path / "missing.tflite"))
    with pytest.raises(export.ExportError, match="neither a .tflite file nor a SavedModel"):
        export.load_exported(str(tmp_path))
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a flatbuffer")
    with pytest.raises(export.ExportError, match="cannot load TFLite model"):
        export.load_exported(str(bad))
    with pytest.raises(export.ExportError, match="unknown quantization"):
        export.tflite_bytes(None, "int4")
    with pytest.raises(export.ExportError, match="representative folder not found"):
        export.representative_faces(str(tmp_path / "nowhere"))


def test_load_inference_dispatches_exported_files(exported):
    from deploy import inference

    model = inference.load_inference(str(exported["dir"] / export.TFLITE_FILES["float32"]))
    assert model.name == "tflite"
    model = inference.load_inference(str(exported["dir"] / export.SAVED_MODEL_DIR))
    assert model.name == "savedmodel"
    assert inference.load_inference(exported["weights"]).name == "keras"


def test_export_script_reports_bad_weights(tmp_path, capsys):
    from scripts import export as export_script

    with pytest.raises(ValueError, match="no checkpoint at"):
        export_script.main(["--weight_path", str(tmp_path / "none.h5"), "--output", str(tmp_path / "o")])
    with pytest.raises(export.ExportError, match="representative folder not found"):
        export_script.main(["--weight_path", str(tmp_path / "none.h5"), "--output", str(tmp_path / "o"),
                            "--int8", "--representative_path", str(tmp_path / "nowhere")])


def test_benchmark_quick_writes_json_and_markdown(exported, tmp_path):
    from perf import benchmark
    from scripts import benchmark as benchmark_script

    out = tmp_path / "bench" / "b.json"
    benchmark_script.main([
        "--quick", "--output", str(out), "--weight_path", exported["weights"],
        "--lr_size", "4", "--matmul_size", "256", "--batch_sizes", "1", "--seconds", "0.05",
        "--paths", "keras,savedmodel,tflite_fp32,tflite_int8",
        "--sample_path", TEST_FACES, "--representative_path", TRAIN_FACES,
        "--pipeline_images", "4", "--pipeline_batch", "2", "--work_dir", str(tmp_path / "w"),
        "--train_batch", "1", "--train_crop", "16", "--train_steps", "1", "--test_copies", "1"])
    report = json.loads(out.read_text())
    for key in ("machine", "tf_version", "matmul", "gflop_per_image", "inference", "quality", "pipeline", "weights",
                "test_py", "training", "training_gflop"):
        assert key in report, key
    assert report["tf_version"] == tf.__version__
    assert report["matmul"]["gflops"] > 0 and report["matmul"]["size"] == 256
    # 2 x the conv MACs at 4x4 input: 1/16 of the 20.16 GFLOP at 16x16.
    assert report["gflop_per_image"] == pytest.approx(20.156 / 16, rel=1e-3)
    rows = {(r["path"], r["batch"]): r for r in report["inference"]}
    # One batch size keeps the four TFLite conversions to two (~10 s fp32, ~20 s int8 each).
    assert set(rows) == {(p, 1) for p in ("keras", "savedmodel", "tflite_fp32", "tflite_int8")}
    for row in rows.values():
        assert row["images_per_s"] > 0
        assert row["gflops"] == pytest.approx(row["images_per_s"] * report["gflop_per_image"])
        assert row["ratio_to_matmul"] == pytest.approx(row["gflops"] / report["matmul"]["gflops"])
        assert 0 < row["p50_ms"] <= row["p90_ms"]
    quality = {r["path"]: r for r in report["quality"]}
    assert quality["savedmodel"]["max_abs_diff_vs_keras"] <= 0.5
    assert quality["tflite_fp32"]["max_abs_diff_vs_keras"] <= 0.5
    assert {r["pipeline"] for r in report["pipeline"]} == {"cached (steady state)", "decode every epoch",
                                                           "shards, decode every epoch", "cached, real-input recipe"}
    assert all(r["images_per_s"] > 0 for r in report["pipeline"])
    md = (out.parent / "b.md").read_text()
    assert "fp32 dense matmul rate" in md and "| tflite_int8 | 1 |" in md and report["machine"] in md
    # which path won on this CPU, and the flags that decide it
    fastest = max((r for r in report["inference"] if r["batch"] == 1), key=lambda r: r["images_per_s"])["path"]
    assert report["fastest"] == {"1": fastest} and f"fastest path at batch 1 on this CPU: **{fastest}**" in md
    assert isinstance(report["cpu_flags"], list) and "- CPU flags: " in md
    # test.py's own rate, in its summary.json, against the same yardstick
    test_py = report["test_py"]
    assert [r["batch"] for r in test_py] == [1] and test_py[0]["images"] == len(list_images(TEST_FACES))
    assert test_py[0]["ratio_to_matmul"] == pytest.approx(
        test_py[0]["images_per_s"] * report["gflop_per_image"] / report["matmul"]["gflops"])
    assert test_py[0]["vs_keras_path"] == pytest.approx(test_py[0]["images_per_s"] / rows[("keras", 1)]["images_per_s"])
    assert "test.py at batch 1:" in md and "## Training step" in md
    training = {r["losses"]: r for r in report["training"]}
    steps = report["training_gflop"]["step_per_image"]
    assert list(training) == [name for name, _, _ in benchmark.TRAIN_CONFIGS] == list(steps)
    for name, row in training.items():
        assert row["images_per_s"] > 0 and 100 < row["peak_rss_mb"]  # TensorFlow alone takes more
        assert row["gflops"] == pytest.approx(row["images_per_s"] * steps[name])
        assert row["images_per_s"] == pytest.approx(row["batch"] / row["step_s"])
        assert bool(row["facenet"]) == ("identity" in name)
    # each row's own peak, not its parent's: the identity rows hold FaceNet's 23M weights (92 MB) as well
    base_peak = training["G losses (L_rgb, L_e, L_lc)"]["peak_rss_mb"]
    assert training["+ identity (L_id)"]["peak_rss_mb"] > base_peak + 50


@pytest.mark.slow
def test_test_py_runs_exported_models(exported, tmp_path):
    """test.py --weight_path takes a .tflite file or a SavedModel folder and writes the Keras model's SR."""
    import subprocess
    import sys

    import cv2

    expected = to_uint8(exported["sr"])  # files sorted by name, as list_images gives them
    stems = [os.path.splitext(os.path.basename(p))[0] for p in list_images(TEST_FACES)]
    for weights, backend in ((exported["dir"] / export.TFLITE_FILES["float32"], "tflite"),
                             (exported["dir"] / export.SAVED_MODEL_DIR, "savedmodel")):
        out = tmp_path / backend
        result = subprocess.run([sys.executable, "test.py", "--gpu_ids", "-1", "--weight_path", str(weights),
                                 "--image_save_path", str(out), "--batchSize", "3", "--num_figures", "0",
                                 "--raw_output", "--no_fr", "--no_vif", "--no_tar_algo", "--no_tar_net"],
                                cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        summary = json.loads((out / "summary.json").read_text())
        assert summary["backend"] == backend and summary["precision"] == "float32" and summary["images"] == 8
        assert summary["raw_output"] is True
        for stem, want in zip(stems, expected):
            got = cv2.cvtColor(cv2.imread(str(out / f"{stem}_SR.png")), cv2.COLOR_BGR2RGB)
            assert np.abs(got.astype(int) - want.astype(int)).max() <= 1, (backend, stem)

    refused = subprocess.run([sys.executable, "test.py", "--gpu_ids", "-1", "--mixed_precision",
                              "--weight_path", str(exported["dir"] / export.SAVED_MODEL_DIR),
                              "--image_save_path", str(tmp_path / "refused")],
                             cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().splitlines()[-1].startswith("test.py: error: ")
    assert "is an exported model" in refused.stderr


def test_benchmark_training_rows_follow_the_flop_accounting(tmp_path):
    """The training section's FLOP model: 3 forwards per trained net, 2 per frozen one, the D update's 1 G + 6 D."""
    from perf import benchmark

    forward, step = benchmark.training_gflop(16)
    # TF's profiler counts the conv MACs (the inference section's count) plus biases, ReLUs and pools
    g = build_generator(2)
    assert forward["G"] == pytest.approx(benchmark.generator_gflop(g, 2), rel=0.02)
    assert forward["D"] > 0 and forward["FaceNet"] > 1.0  # FaceNet runs at 160x160 whatever the face size
    G, D, F = forward["G"], forward["D"], forward["FaceNet"]
    assert step == pytest.approx({"G losses (L_rgb, L_e, L_lc)": 3 * G, "+ identity (L_id)": 3 * G + 3 * F,
                                  "+ GAN (L_ad, D update)": 4 * G + 8 * D, "+ identity + GAN": 4 * G + 3 * F + 8 * D})
