"""``model-export``: the export stage's CLI (a thin shell over model_export's functions).

TensorFlow is imported only inside the verbs that need it, so ``--help`` is instant.
Exit codes: 0 ok, 1 failure, 2 usage error.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from edge.errors import EdgeError
from edge.signing import generate_keys, key_id, load_public_key, sign_bundle
from model_export import __version__
from model_export.cli_common import ExistingDir, ExistingFile, PathArg, face_data, fail, table
from model_export.cli_train import train
from model_export.targets import DEFAULT_TARGET, TARGETS


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Example: model-export build --out build/bundle-sface",
)
@click.version_option(__version__, "-V", "--version", prog_name="model-export")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr.")
def main(quiet: bool) -> None:
    """model-export: build, verify, evaluate and calibrate edge-face model bundles.

    Needs the export extra: pip install '.[export]' from the repository.
    """
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(levelname)s %(message)s",
        force=True,
    )
    for noisy in ("tensorflow", "absl", "h5py"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


@main.command()
@click.option("--out", type=PathArg, required=True, help="Folder to write the bundle to.")
@click.option(
    "--encoder",
    default="sface",
    show_default=True,
    help="'sface' (OpenCV zoo's SFace, the default), 'dlib', a dlib ResNet .dat or an ONNX "
    "face encoder (.onnx). docs/ENCODERS.md compares them.",
)
@click.option(
    "--quantization",
    type=click.Choice(["auto", "int8", "dynamic", "float16", "float32"]),
    default="auto",
    show_default=True,
    help="auto: convert to each, keep the one the --target runs fastest among those that "
    "follow the float model closely.",
)
@click.option(
    "--target",
    type=click.Choice(list(TARGETS)),
    default=DEFAULT_TARGET,
    show_default=True,
    help="The board the bundle is for: auto picks from a table of what it runs fastest "
    "(docs/MODEL_BUNDLE.md), the same bundle from the same inputs; 'here' times every "
    "candidate on this machine instead.",
)
@click.option(
    "--data", type=ExistingDir, default=None, help="Face data root (default $EDGE_FACE_DATA)."
)
@click.option(
    "--calibration",
    type=ExistingDir,
    default=None,
    help="Photos to calibrate on, one folder per person (default: the calibrate people of "
    "data/splits.json under DATA).",
)
@click.option(
    "--pairs",
    type=ExistingFile,
    default=None,
    help="LFW-format pairs to fit tau on (default: pairs of the calibrate people).",
)
@click.option(
    "--images", type=ExistingDir, default=None, help="Root of the pairs' photos (default DATA/lfw)."
)
@click.option(
    "--no-evaluate",
    is_flag=True,
    help="Fit no tau on pairs (tau = the encoder's documented threshold).",
)
@click.option("--force", is_flag=True, help="Rebuild even when the cache has this bundle.")
@click.option(
    "--sign",
    "sign_key",
    type=ExistingFile,
    default=None,
    help="Sign the bundle with this Ed25519 private key (model-export keygen); devices with "
    "[model] public_key run only bundles it signed.",
)
def build(out: Path, encoder: str, quantization: str, target: str, data: Path | None,
          calibration: Path | None, pairs: Path | None, images: Path | None, no_evaluate: bool,
          force: bool, sign_key: Path | None) -> None:  # fmt: skip
    """Build a quantized model bundle: encoder, detector, alignment, manifest.

    With no options: OpenCV zoo's SFace (imported from ONNX), converted to each
    quantization (full int8, dynamic range, float16, float32), the accurate one the
    target board (--target, default pi4) runs fastest kept; int8 calibration, tau and the open-set table are fitted on the calibrate people
    of data/splits.json only (never on the LFW pairs the benchmarks report on). Takes 3-6
    minutes on 2 cores; a second build with the same inputs reuses the cache. --encoder dlib: dlib's ResNet in full
    int8 (2.5x faster, loads in tflite-runtime 2.14 too; fewer correct names).

    \b
    Example:
      model-export build --out build/bundle-sface
      model-export build --out build/bundle --encoder dlib
      model-export build --out /tmp/b --encoder my_arcface.onnx --quantization float16
      model-export build --out build/bundle-sface --sign keys/bundle-signing.key
    """
    from model_export.build import BuildOptions
    from model_export.build import build as run_build

    opts = BuildOptions(out=out, data_root=face_data(data), encoder=encoder, calibration_root=calibration,
                        pairs=pairs, images=images, evaluate=not no_evaluate, force=force,
                        quantization=quantization, target=target)  # fmt: skip
    try:
        path = run_build(opts)
        signed = sign_bundle(path, sign_key) if sign_key is not None else None
    except EdgeError as exc:
        fail(exc)
    manifest = json.loads((path / "manifest.json").read_text())
    ev, q = manifest.get("evaluation", {}), manifest["quantization_check"]
    enc = manifest["encoder"]
    rows = [("bundle", str(path)), ("encoder id", manifest["encoder_id"]),
            ("quantization (runtimes)", f"{enc['quantization']} ({', '.join(enc.get('runtimes', []))})"),
            ("tau verify / identify", f"{manifest['tau']['verify']:.4f} / {manifest['tau']['identify']:.4f}"),
            ("vs float: cosine mean / min", f"{q['cosine_mean']:.5f} / {q['cosine_min']:.5f}")]  # fmt: skip
    fit = manifest.get("calibration_pairs")
    if fit:
        rows += [("calibrate pairs (tau fitted)", f"{fit['pairs']} pairs, {fit['accuracy_mean']:.4f} ({fit['model']})")]  # fmt: skip
    if ev:
        rows += [("own held-out pairs (k-fold)", f"{ev['accuracy_mean']:.4f} ± {ev['accuracy_std']:.4f} ({ev['model']})"),
                 ("TAR at FAR 1e-3", ev["tar_at_far"]), ("photos without a face", ev["no_face"])]  # fmt: skip
    if signed is not None:
        rows += [("signed with key", signed)]
    click.echo(table(rows))
    click.echo(
        "held-out figures: model-export evaluate --bundle DIR (LFW View 2 pairs) or make bench"
    )


@main.command()
@click.option("--bundle", type=ExistingDir, required=True, help="The bundle folder.")
@click.option(
    "--pairs",
    type=ExistingFile,
    default=None,
    help="LFW-format pairs file (default: DATA/lfw_protocol/pairs_dev.txt's folds 1-3, the "
    "report people's).",
)
@click.option(
    "--images", type=ExistingDir, default=None, help="Root of the photos (default DATA/lfw)."
)
@click.option(
    "--json", "json_out", type=PathArg, default=None, help="Also write the report as JSON here."
)
@click.option(
    "--float", "with_float", is_flag=True, help="Also evaluate the unquantized model the same way."
)
@click.option(
    "--data", type=ExistingDir, default=None, help="Face data root (default $EDGE_FACE_DATA)."
)
def evaluate(bundle: Path, pairs: Path | None, images: Path | None, json_out: Path | None,
             with_float: bool, data: Path | None) -> None:  # fmt: skip
    """Evaluate a bundle on the LFW protocol through the device code path.

    By default the LFW View 2 pairs of folds 1-3, whose people are the report people of
    data/splits.json: no bundle is fitted on them (folds 4-5 are calibrate and select
    people). A trained encoder's bundle is evaluated on its own held-out pairs by
    default. Accuracy is k-fold (tau chosen on the other folds); tau is chosen on all
    folds; TAR is read at FAR 1e-3.

    \b
    Example:
      model-export evaluate --bundle build/bundle --json build/eval.json --float
    """
    from edge.bundle import load_bundle
    from model_export.data import read_pairs
    from model_export.evaluate import evaluate_bundle

    root = None if pairs and images else face_data(data)
    try:
        b = load_bundle(bundle)
        own = b.raw.get("evaluation", {}).get("pairs_file")  # a trained encoder's held-out pairs
        pairs_file = pairs or (bundle / own if own else root / "lfw_protocol" / "pairs_dev.txt")  # type: ignore[operator]
        if own and pairs is None and images is None:  # its pairs: relative to its data's root
            trained_on = Path(b.raw.get("training", {}).get("data", {}).get("root", "/nonexistent"))
            images = trained_on if trained_on.is_dir() else root
        if (bundle / "train_people.txt").is_file():
            from model_export.calibration import check_held_out

            check_held_out(bundle, read_pairs(pairs_file, images or root / "lfw"), pairs_file)  # type: ignore[operator]
        float_model = None
        if with_float:
            from model_export.build import float_model_path
            from model_export.encoders import resolve_encoder

            float_model = float_model_path(resolve_encoder(b.raw["provenance"]["encoder_source"]))
        if pairs is None and not own:  # the shared protocol: its report folds alone
            from model_export.splits import protocol_pairs

            chosen = protocol_pairs(root)  # type: ignore[arg-type]
        else:
            chosen = read_pairs(pairs_file, images or root / "lfw")  # type: ignore[operator]
        report = evaluate_bundle(b, chosen, float_model)
    except EdgeError as exc:
        fail(exc)
    click.echo(f"{'model':<14} {'accuracy':>16} {'tau':>8} {'TAR@1e-3':>9} {'AUC':>7}")
    for name, v in report["variants"].items():
        click.echo(f"{name:<14} {v['accuracy_mean']:>9.4f} ± {v['accuracy_std']:.4f} {v['tau']:>8.4f} "
                   f"{v['tar_at_far']:>9.4f} {v['auc']:>7.4f}")  # fmt: skip
    click.echo(f"pairs: {report['pairs']}; photos without a face: {report['no_face']['count']} "
               f"({report['no_face']['handling']}); bundle's model: {report['model']}")  # fmt: skip
    if json_out:
        json_out.write_text(json.dumps(report, indent=2) + "\n")
        click.echo(f"wrote {json_out}")


@main.command()
@click.option("--bundle", type=ExistingDir, required=True, help="The bundle folder.")
@click.option(
    "--data", type=ExistingDir, default=None, help="Face data root (default $EDGE_FACE_DATA)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def verify(bundle: Path, data: Path | None, as_json: bool) -> None:
    """Check a bundle: file hashes, int8 against float on the golden faces.

    Exit 0 when the bundle is intact and its int8 encoder agrees with the float model
    (per-face cosine, the golden distance matrix, decisions at tau), 1 otherwise.

    \b
    Example:
      model-export verify --bundle build/bundle
    """
    from model_export.verify import verify_bundle

    try:
        result = verify_bundle(bundle, face_data(data))
    except EdgeError as exc:
        fail(exc)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        keys = ["hashes", "faces", "cosine_mean", "cosine_min", "distance_change_mean",
                "distance_change_max", "decision_flips", "tau"]  # fmt: skip
        click.echo(table([(k, result[k]) for k in keys]))
        for line in result["problems"]:
            click.echo(f"FAIL: {line}", err=True)
        click.echo("OK" if result["ok"] else "FAILED")
    sys.exit(0 if result["ok"] else 1)


@main.command()
@click.option("--bundle", type=ExistingDir, required=True, help="The bundle folder.")
@click.option(
    "--out",
    type=PathArg,
    default=None,
    help="Folder to write the refitted bundle to (default: --bundle, replaced once the new one verifies).",
)
@click.option(
    "--data", type=ExistingDir, default=None, help="Face data root (default $EDGE_FACE_DATA)."
)
def calibrate(bundle: Path, out: Path | None, data: Path | None) -> None:
    """Fit a finished bundle's open-set rule again: its cohort and its table of taus.

    Runs the bundle's own encoder (no TensorFlow) over the calibrate people of
    data/splits.json (those its trained encoder learnt from left out, as its
    train_people.txt lists) and writes the cohort and the table in cohort scores, as
    model-export build does: for a bundle whose training run is gone, or one built before
    cohorts. The encoder, its id and the gallery embeddings made with it are unchanged.

    \b
    Example:
      model-export calibrate --bundle models/edge-face-dlib-cut
    """
    from model_export.open_set import recalibrate

    try:
        path = recalibrate(bundle, out or bundle, face_data(data))
    except EdgeError as exc:
        fail(exc)
    manifest = json.loads((path / "manifest.json").read_text())
    ident, cohort = manifest["identify"], manifest["cohort"]
    from edge.decision import OpenSetTable

    fitted = OpenSetTable.from_json(ident)
    click.echo(table([("bundle", str(path)), ("encoder id", manifest["encoder_id"]),
                      ("cohort", f"{cohort['faces']} faces, k {cohort['k']}"),
                      ("margin", ident["margin"]),
                      ("tau.identify (gallery of 100, 1%)", f"{manifest['tau']['identify']:.4f}"),
                      *((f"  {d}'s own (a face near its cohort faces)",
                         f"{fitted.tau_for(100, 0.01, d):.4f}")
                        for d, _ in fitted.by_domain)]))  # fmt: skip


@main.command()
@click.option(
    "--out", type=PathArg, default=Path(), show_default=True, help="Folder for the two keys."
)
def keygen(out: Path) -> None:
    """Make an Ed25519 key pair for signing bundles.

    Writes bundle-signing.key (the private key, mode 0600: keep it on the build machine,
    never on a device) and bundle-signing.pub (copy it to each device and set
    [model] public_key to it). An OpenSSH key (ssh-keygen -t ed25519) works as well.

    \b
    Example:
      model-export keygen --out ~/.config/edge-face
    """
    try:
        private, public = generate_keys(out)
        kid = key_id(load_public_key(public))
    except EdgeError as exc:
        fail(exc)
    click.echo(table([("private key (keep secret)", str(private)), ("public key", str(public)),
                      ("key id", kid)]))  # fmt: skip


@main.command()
@click.option("--bundle", type=ExistingDir, required=True, help="The bundle folder.")
@click.option("--key", type=ExistingFile, required=True, help="The Ed25519 private key.")
def sign(bundle: Path, key: Path) -> None:
    """Sign a finished bundle: writes manifest.sig beside its manifest.

    The bundle is checked first (every file's sha256 and its thresholds): only a bundle
    that verifies is signed. The signature covers manifest.json, which lists the sha256 of
    every other file.

    \b
    Example:
      model-export sign --bundle models/edge-face-dlib-cut --key bundle-signing.key
    """
    from edge.bundle import load_bundle

    try:
        load_bundle(bundle)
        kid = sign_bundle(bundle, key)
    except EdgeError as exc:
        fail(exc)
    click.echo(table([("bundle", str(bundle)), ("signed with key", kid)]))


main.add_command(train)

if __name__ == "__main__":  # pragma: no cover
    main()
