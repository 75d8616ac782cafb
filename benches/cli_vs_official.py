"""envelope against the official aws-encryption-cli, side by side in one run.

Encrypts and decrypts one 100 MiB file with the same aws-encryption-cli
command line under both tools (envelope in its drop-in mode), for suites
0x0478 and 0x0578, against one moto KMS on 127.0.0.1. The two tools run in
turn, A B A B ..., and the table gives each one's median wall time and peak
RSS (of that process alone, from wait4) and the per-round ratio's median.

    ./scripts/install-test-deps.sh
    cargo build --release -p envelope-cli
    .venv/bin/python benches/cli_vs_official.py [--rounds 5] [--mib 100]
"""
import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUITES = {
    "0x0478": "AES_256_GCM_HKDF_SHA512_COMMIT_KEY",
    "0x0578": "AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(argv, env, work):
    """Runs argv; returns (wall seconds, peak RSS in MiB) of that process.

    Through GNU time: a child of this Python process would report Python's
    own peak RSS, which the kernel carries across exec.
    """
    report = os.path.join(work, "time.txt")
    run = subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", report, *argv], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if run.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed: {run.stderr.decode()}")
    wall, rss_kib = open(report).read().split()[-2:]
    return float(wall), int(rss_kib) / 1024


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mib", type=int, default=100)
    opts = parser.parse_args()
    ours = os.path.join(ROOT, "target/release/envelope")
    official = os.path.join(ROOT, ".venv-cli/bin/aws-encryption-cli")
    for path, hint in [(ours, "cargo build --release -p envelope-cli"), (official, "./scripts/install-test-deps.sh"),
                       ("/usr/bin/time", "apt-get install time")]:
        if not os.path.exists(path):
            sys.exit(f"{path} is missing: run {hint}")

    port = free_port()
    moto = subprocess.Popen(
        [os.path.join(ROOT, ".venv/bin/moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        env = dict(os.environ, AWS_ENDPOINT_URL_KMS=f"http://127.0.0.1:{port}", AWS_ACCESS_KEY_ID="bench",
                   AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1",
                   AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE="/nonexistent",
                   AWS_SHARED_CREDENTIALS_FILE="/nonexistent")
        import boto3
        for _ in range(100):
            try:
                kms = boto3.client("kms", endpoint_url=env["AWS_ENDPOINT_URL_KMS"], region_name="us-east-1",
                                   aws_access_key_id="bench", aws_secret_access_key="bench")
                key = kms.create_key()["KeyMetadata"]["Arn"]
                break
            except Exception:  # moto still starting
                time.sleep(0.1)
        else:
            sys.exit("moto did not start")
        with tempfile.TemporaryDirectory() as work:
            plain = os.path.join(work, "plain.bin")
            with open(plain, "wb") as f:
                block = os.urandom(1 << 20)
                for _ in range(opts.mib):
                    f.write(block)
            rows = []
            for suite_id, suite in SUITES.items():
                for op in ("encrypt", "decrypt"):
                    samples = {"official": [], "envelope": []}
                    for _ in range(opts.rounds):
                        for name, tool in (("official", official), ("envelope", ours)):
                            ct = os.path.join(work, f"{name}.{suite_id}.ct")
                            if op == "encrypt":
                                argv = [tool, "-e", "-i", plain, "-o", ct, "-w", f"key={key}",
                                        "--algorithm", suite, "-S"]
                            else:
                                argv = [tool, "-d", "-i", ct, "-o", os.path.join(work, f"{name}.out"),
                                        "-w", f"key={key}", "-S"]
                            samples[name].append(timed(argv, env, work))
                    ratio = statistics.median(o[0] / e[0] for o, e in zip(samples["official"], samples["envelope"]))
                    med = {n: (statistics.median(s[0] for s in v), statistics.median(s[1] for s in v))
                           for n, v in samples.items()}
                    rows.append((suite_id, op, med["official"], med["envelope"], ratio))
        print(f"{opts.mib} MiB file, {opts.rounds} rounds each, tools alternating; medians; "
              f"{os.cpu_count()} CPUs; aws-encryption-cli 4.3.0 vs envelope (drop-in mode)")
        print(f"| suite | op | official s | envelope s | official/envelope time | official RSS MiB | envelope RSS MiB |")
        print("|---|---|---|---|---|---|---|")
        for suite_id, op, (ot, orss), (et, erss), ratio in rows:
            print(f"| {suite_id} | {op} | {ot:.2f} | {et:.2f} | {ratio:.1f}x | {orss:.0f} | {erss:.0f} |")
    finally:
        moto.terminate()
        moto.wait()


if __name__ == "__main__":
    main()
