"""SmartNoise Synth's MST or AIM on the source table synthbench exported (bench/cmd/synthbench).

Run in the environment bench/peers/setup.sh makes (snsynth). Every column is categorical (text;
wait_days already binned as Velo bins it); a NULL becomes its own category, which the
evaluation leaves out as it does for the real rows. No preprocessor budget is spent: every
column's categories are given (the bins are public), so the whole epsilon goes to the
synthesizer. SmartNoise's unit of privacy is the row: each row of --in is one individual
to it. Prints one JSON line: {"system", "method", "rows", "fit_seconds", "version"}.
"""

import argparse
import json
import sys
import time
import warnings

NULL = "\u2205"  # the category standing for NULL


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", choices=["mst", "aim"], required=True)
    ap.add_argument("--in", dest="inp", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--epsilon", type=float, default=1.0)
    ap.add_argument("--delta", type=float, default=1e-6)
    ap.add_argument(
        "--sampler",
        choices=["round", "sample"],
        default="round",
        help="Private-PGM's row generator: round (SmartNoise's default) or sample (i.i.d. draws)",
    )
    a = ap.parse_args()
    res = {"system": "snsynth", "method": a.method, "sampler": a.sampler}
    try:
        warnings.simplefilter("ignore")
        import importlib.metadata as md

        import pandas as pd
        from snsynth import Synthesizer

        res["version"] = "smartnoise-synth " + md.version("smartnoise-synth")
        df = pd.read_parquet(a.inp).astype("object").where(lambda d: d.notna(), NULL)
        cols = list(df.columns)
        start = time.time()
        synth = Synthesizer.create(a.method, epsilon=a.epsilon, delta=a.delta, verbose=False)
        synth.fit(df, categorical_columns=cols, preprocessor_eps=0.0)
        if a.sampler != "round":
            # mbi 1.1's "round" generator ranks the rows of each parent group in row order,
            # so two children of the same parent come out sorted together (a dependence the
            # model does not have); "sample" draws each row independently.
            cls = type(synth.synthesizer)
            orig = cls.synthetic_data
            cls.synthetic_data = lambda self, rows=None, method="round": orig(self, rows=rows, method=a.sampler)
        out = synth.sample(a.rows)
        out = out[cols].astype("object").where(lambda d: d != NULL, None)
        out.to_parquet(a.out, index=False)
        res["fit_seconds"] = time.time() - start
        res["rows"] = len(out)
    except Exception as e:  # reported, not fatal: synthbench prints it in the table
        res["error"] = f"{type(e).__name__}: {e}"
    print(json.dumps(res))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
