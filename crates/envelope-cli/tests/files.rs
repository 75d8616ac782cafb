//! The streaming CLI on files, trees and pipes: directory round trips,
//! truncation at every frame boundary (exit 1, nothing left behind),
//! `--metadata-output`, `--quiet`, signals, and path usage errors.

mod common;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{envelope, key_spec, names, ok, s, spawn, tree};
use envelope_core::format::header::Header;

/// Bytes that differ per file, so a mix-up between files would show.
fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn a_tree_with_nested_folders_and_empty_files_round_trips() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = key_spec(dir.path(), "k", 1);
    let input = dir.path().join("in");
    let files: &[(&str, usize)] = &[
        ("empty", 0),
        ("one", 1),
        ("a/frame", 64),
        ("a/b/c/deep.bin", 300_000),
        ("a/b/also-empty", 0),
        ("a/b/c/already.encrypted", 10),
        ("z z/spaced name.txt", 65),
    ];
    for (i, (name, len)) in files.iter().enumerate() {
        let path = input.join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, data(*len, i as u8)).expect("write");
    }
    std::fs::create_dir_all(input.join("a/empty-dir/nested-empty")).expect("mkdir");

    let sealed = dir.path().join("sealed");
    let plain = dir.path().join("plain");
    ok(
        &[
            "encrypt",
            "-r",
            "-i",
            s(&input),
            "-o",
            s(&sealed),
            "-w",
            &key,
            "--frame-length",
            "64",
            "-c",
            "purpose=tree",
        ],
        None,
    );
    let sealed_tree = tree(&sealed);
    assert!(sealed_tree
        .iter()
        .any(|(p, _)| p == "a/b/c/deep.bin.encrypted"));
    assert!(sealed_tree.iter().any(|(p, _)| p == "empty.encrypted"));
    assert!(sealed_tree
        .iter()
        .any(|(p, _)| p == "a/empty-dir/nested-empty/"));
    for (path, contents) in &sealed_tree {
        if let Some(contents) = contents {
            assert_eq!(contents[0], 2, "{path} is a v2 message");
        }
    }

    ok(
        &[
            "decrypt",
            "--recursive",
            "-i",
            s(&sealed),
            "-o",
            s(&plain),
            "-w",
            &key,
            "-c",
            "purpose=tree",
        ],
        None,
    );
    assert_eq!(tree(&plain), tree(&input), "byte-identical tree");

    // An explicit suffix is appended on decrypt, never stripped.
    let suffixed = dir.path().join("suffixed");
    ok(
        &[
            "decrypt",
            "-r",
            "-i",
            s(&sealed),
            "-o",
            s(&suffixed),
            "-w",
            &key,
            "--suffix",
            ".out",
        ],
        None,
    );
    assert!(suffixed.join("a/b/c/deep.bin.encrypted.out").is_file());

    // A single file into an existing directory gets a derived name.
    let single = dir.path().join("single");
    std::fs::create_dir(&single).expect("mkdir");
    ok(
        &[
            "decrypt",
            "-i",
            s(&sealed.join("one.encrypted")),
            "-o",
            s(&single),
            "-w",
            &key,
        ],
        None,
    );
    assert_eq!(names(&single), ["one"]);
    assert_eq!(std::fs::read(single.join("one")).expect("read"), data(1, 1));
}

/// Writes the message truncated to `cut` bytes and checks that decrypting
/// it fails with exit 1 and leaves nothing in the output directory.
fn assert_truncation_fails(message: &[u8], cut: usize, key: &str, work: &Path, release: &[&str]) {
    let truncated = work.join("truncated");
    std::fs::write(&truncated, &message[..cut]).expect("write");
    let out_dir = work.join("out");
    std::fs::create_dir_all(&out_dir).expect("mkdir");
    let target = out_dir.join("plain");
    let mut args = vec!["decrypt", "-i", s(&truncated), "-o", s(&target), "-w", key];
    args.extend_from_slice(release);
    let out = envelope(&args, None);
    assert_eq!(out.status.code(), Some(1), "cut at {cut} {release:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("decryption failed"), "{stderr}");
    assert!(
        names(&out_dir).is_empty(),
        "cut at {cut}: {:?}",
        names(&out_dir)
    );

    // To stdout (verified by default): not a byte of plaintext.
    let out = envelope(
        &["decrypt", "-i", "-", "-o", "-", "-w", key],
        Some(&message[..cut]),
    );
    assert_eq!(out.status.code(), Some(1), "stdout, cut at {cut}");
    assert!(out.stdout.is_empty(), "stdout, cut at {cut}");
}

#[test]
fn truncation_at_every_frame_boundary_exits_1_and_removes_the_output() {
    const FRAME: usize = 64;
    const FRAMES: usize = 10;
    const TAIL: usize = 10;
    let dir = tempfile::tempdir().expect("tempdir");
    let key = key_spec(dir.path(), "k", 3);
    let plaintext = data(FRAMES * FRAME + TAIL, 7);
    for (suite, signed) in [("0x0478", false), ("0x0578", true)] {
        let message = ok(
            &[
                "encrypt",
                "-i",
                "-",
                "-o",
                "-",
                "-w",
                &key,
                "--suite",
                suite,
                "--frame-length",
                "64",
            ],
            Some(&plaintext),
        );
        let (_, header_len) = Header::parse_prefix(&message, None).expect("header");
        // v2 frames: sequence number, 12-byte IV, content, 16-byte tag; the
        // final frame adds an end marker and a content length.
        let regular = 4 + 12 + FRAME + 16;
        let final_end = header_len + FRAMES * regular + (4 + 4 + 12 + 4 + TAIL + 16);
        let footer = message.len() - final_end;
        assert_eq!(signed, footer > 0, "{suite}: footer of {footer} bytes");

        let mut cuts: Vec<usize> = (0..=FRAMES).map(|k| header_len + k * regular).collect();
        if signed {
            cuts.push(final_end); // the signature is missing
        }
        cuts.push(message.len() - 1);
        for cut in cuts {
            assert_truncation_fails(&message, cut, &key, dir.path(), &[]);
        }
        // The strict release policy too, on a mid-message cut.
        let mid = header_len + 5 * regular;
        assert_truncation_fails(&message, mid, &key, dir.path(), &["--release", "verified"]);

        // And the untruncated message decrypts.
        let target = dir.path().join("whole");
        std::fs::write(dir.path().join("m"), &message).expect("write");
        ok(
            &[
                "decrypt",
                "-i",
                s(&dir.path().join("m")),
                "-o",
                s(&target),
                "-w",
                &key,
            ],
            None,
        );
        assert_eq!(std::fs::read(&target).expect("read"), plaintext);
    }
}

#[test]
fn metadata_output_describes_each_file_without_key_material() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = key_spec(dir.path(), "first", 1);
    let second = key_spec(dir.path(), "second", 2);
    let input = dir.path().join("in");
    std::fs::create_dir_all(input.join("sub")).expect("mkdir");
    std::fs::write(input.join("a.txt"), b"alpha").expect("write");
    std::fs::write(input.join("sub/b.txt"), b"").expect("write");
    let sealed = dir.path().join("sealed");
    let meta = dir.path().join("meta.jsonl");
    ok(
        &[
            "encrypt",
            "-r",
            "-i",
            s(&input),
            "-o",
            s(&sealed),
            "-w",
            &first,
            "-w",
            &second,
            "-c",
            "team=blue",
            "--suite",
            "0x0478",
            "--metadata-output",
            s(&meta),
        ],
        None,
    );
    let text = std::fs::read_to_string(&meta).expect("metadata");
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    assert_eq!(records.len(), 2);
    let record = &records[0];
    assert_eq!(record["mode"], "encrypt");
    assert_eq!(record["input"], s(&input.join("a.txt")));
    assert_eq!(record["output"], s(&sealed.join("a.txt.encrypted")));
    assert_eq!(record["plaintext_length"], 5);
    assert_eq!(records[1]["input"], s(&input.join("sub/b.txt")));
    assert_eq!(records[1]["plaintext_length"], 0);
    let header = &record["header"];
    assert_eq!(header["version"], 2);
    assert_eq!(header["algorithm"], "AES_256_GCM_HKDF_SHA512_COMMIT_KEY");
    assert_eq!(header["algorithm_id"], "0x0478");
    assert_eq!(
        header["encryption_context"],
        serde_json::json!({"team": "blue"})
    );
    assert_eq!(header["content_type"], "framed");
    assert_eq!(header["frame_length"], 4096);
    assert!(header["message_id"]
        .as_str()
        .is_some_and(|id| id.len() == 44));
    let keys = header["encrypted_data_keys"].as_array().expect("EDKs");
    assert_eq!(keys.len(), 2);
    for edk in keys {
        let object = edk.as_object().expect("object");
        assert_eq!(object.len(), 1, "only the provider, no wrapped key: {edk}");
        assert_eq!(edk["key_provider"]["provider_id"], "cli-ns");
        // Raw AES key info is the key name plus binary IV fields.
        assert_eq!(edk["key_provider"]["key_info_encoding"], "base64");
    }

    // Decrypt, metadata on stdout while the plaintext goes to a file.
    let target = dir.path().join("a.txt");
    let stdout = ok(
        &[
            "decrypt",
            "-i",
            s(&sealed.join("a.txt.encrypted")),
            "-o",
            s(&target),
            "-w",
            &second,
            "--metadata-output",
            "-",
        ],
        None,
    );
    let record: serde_json::Value = serde_json::from_slice(&stdout).expect("JSON");
    assert_eq!(record["mode"], "decrypt");
    assert_eq!(record["output"], s(&target));
    assert_eq!(record["header"]["encryption_context"]["team"], "blue");
    assert_eq!(std::fs::read(&target).expect("read"), b"alpha");

    // Metadata and data cannot share stdout.
    let out = envelope(
        &[
            "decrypt",
            "-i",
            "-",
            "-o",
            "-",
            "-w",
            &second,
            "--metadata-output",
            "-",
        ],
        Some(b"x"),
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn quiet_prints_nothing_and_pipes_stream_both_ways() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = key_spec(dir.path(), "k", 5);
    let plaintext = data(3 << 20, 9);
    let input = dir.path().join("big");
    std::fs::write(&input, &plaintext).expect("write");
    let sealed = dir.path().join("big.encrypted");
    let target = dir.path().join("big.out");
    for args in [
        vec![
            "encrypt",
            "-q",
            "-i",
            s(&input),
            "-o",
            s(&sealed),
            "-w",
            &key,
        ],
        vec![
            "decrypt",
            "--quiet",
            "-i",
            s(&sealed),
            "-o",
            s(&target),
            "-w",
            &key,
        ],
    ] {
        let out = envelope(&args, None);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{args:?}");
    }
    assert_eq!(std::fs::read(&target).expect("read"), plaintext);

    // stdin to stdout, several copy buffers long, under both release policies.
    let sealed = ok(
        &["encrypt", "-i", "-", "-o", "-", "-w", &key],
        Some(&plaintext),
    );
    for release in ["verified", "per-frame"] {
        let out = ok(
            &[
                "decrypt",
                "-i",
                "-",
                "-o",
                "-",
                "-w",
                &key,
                "--release",
                release,
            ],
            Some(&sealed),
        );
        assert!(out == plaintext, "{release}");
    }

    // Warnings are the only thing --quiet hides besides the bar.
    #[cfg(unix)]
    {
        let tree_in = dir.path().join("tree");
        std::fs::create_dir(&tree_in).expect("mkdir");
        std::fs::write(tree_in.join("f"), b"f").expect("write");
        std::os::unix::fs::symlink(&input, tree_in.join("link")).expect("symlink");
        let out_dir = dir.path().join("tree-out");
        let out = envelope(
            &[
                "encrypt",
                "-r",
                "-i",
                s(&tree_in),
                "-o",
                s(&out_dir),
                "-w",
                &key,
            ],
            None,
        );
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("skipping"));
        assert_eq!(
            names(&out_dir),
            ["f.encrypted"],
            "symlinks are not followed"
        );
        let out = envelope(
            &[
                "encrypt",
                "-rq",
                "-i",
                s(&tree_in),
                "-o",
                s(&out_dir),
                "-w",
                &key,
            ],
            None,
        );
        assert!(out.status.success() && out.stderr.is_empty());
    }
}

#[test]
fn path_combinations_that_cannot_work_are_usage_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = key_spec(dir.path(), "k", 6);
    let input = dir.path().join("in");
    std::fs::create_dir(&input).expect("mkdir");
    std::fs::write(input.join("f"), b"f").expect("write");
    let file = input.join("f");
    let cases: Vec<Vec<&str>> = vec![
        vec!["encrypt", "-i", s(&input), "-o", "elsewhere"],
        vec!["encrypt", "-r", "-i", s(&input), "-o", "-"],
        vec!["encrypt", "-r", "-i", s(&input), "-o", s(&file)],
        vec!["encrypt", "-r", "-i", s(&input), "-o", s(&input)],
        vec!["encrypt", "-i", s(&file), "-o", s(&file)],
        vec!["encrypt", "-i", "-", "-o", s(&input)],
    ];
    for mut args in cases {
        args.extend(["-w", &key]);
        let out = envelope(&args, Some(b""));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr)
                .trim_end()
                .lines()
                .count(),
            1
        );
    }
    assert_eq!(names(&input), ["f"], "nothing was written");
    assert_eq!(std::fs::read(&file).expect("read"), b"f");

    // A missing input is a failure, not a usage error.
    let out = envelope(
        &["encrypt", "-i", "/nonexistent/in", "-o", "-", "-w", &key],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn sigterm_mid_decrypt_removes_the_temporary_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = key_spec(dir.path(), "k", 8);
    let message = ok(
        &[
            "encrypt",
            "-i",
            "-",
            "-o",
            "-",
            "-w",
            &key,
            "--frame-length",
            "64",
        ],
        Some(&data(10_000, 1)),
    );
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).expect("mkdir");
    let target = out_dir.join("plain");
    let mut child = spawn(&["decrypt", "-i", "-", "-o", s(&target), "-w", &key]);
    let mut stdin = child.stdin.take().expect("stdin");
    // Half the message, with the pipe held open: the decryptor waits.
    stdin
        .write_all(&message[..message.len() / 2])
        .expect("write");
    stdin.flush().expect("flush");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !names(&out_dir).iter().any(|n| n.ends_with(".part")) {
        assert!(Instant::now() < deadline, "no temporary file appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(143));
    assert!(names(&out_dir).is_empty(), "{:?}", names(&out_dir));
    drop(stdin);
}
