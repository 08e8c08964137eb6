use std::io::Read;

use super::*;

/// What `tar::Archive` reads back from one entry.
#[derive(Debug, PartialEq, Eq)]
struct Read_ {
    kind: tar::EntryType,
    name: Vec<u8>,
    link: Option<Vec<u8>>,
    mode: u32,
    data: Vec<u8>,
}

fn read_all(tar: &[u8]) -> Vec<Read_> {
    let mut archive = tar::Archive::new(tar);
    let mut out = Vec::new();
    for entry in archive.entries().expect("archive reads") {
        let mut entry = entry.expect("entry reads");
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("data reads");
        out.push(Read_ {
            kind: entry.header().entry_type(),
            name: entry.path_bytes().into_owned(),
            link: entry.link_name_bytes().map(|l| l.into_owned()),
            mode: entry.header().mode().expect("mode"),
            data,
        });
    }
    out
}

#[test]
fn hostile_names_round_trip_byte_for_byte() {
    let long_name = [b"a/".repeat(60), b"../../escape".to_vec()].concat();
    let long_target = b"../".repeat(50);
    let names: Vec<Vec<u8>> = vec![
        b"/etc/passwd".to_vec(),
        b"../x".to_vec(),
        b"a/../../x".to_vec(),
        b".".to_vec(),
        b"/".to_vec(),
        b"./".to_vec(),
        b"a/.wh.".to_vec(),
        b"a/.wh..".to_vec(),
        b".wh...".to_vec(),
        b"bad\xffutf8".to_vec(),
        long_name.clone(),
    ];
    let mut b = LayerBuilder::new();
    for n in &names {
        b = b.raw(RawEntry::new(tar::EntryType::Regular, n.clone()).data(b"x".to_vec()));
    }
    b = b
        .raw(RawEntry::new(tar::EntryType::Symlink, "link").link_name("/etc"))
        .raw(RawEntry::new(tar::EntryType::Link, "hard").link_name("../../outside"))
        .raw(RawEntry::new(tar::EntryType::Symlink, "deep").link_name(long_target.clone()));
    let got = read_all(&b.build());

    assert_eq!(got.len(), names.len() + 3);
    for (entry, name) in got.iter().zip(&names) {
        assert_eq!(&entry.name, name);
        assert_eq!(entry.kind, tar::EntryType::Regular);
        assert_eq!(entry.data, b"x");
    }
    let tail = &got[names.len()..];
    assert_eq!(tail[0].link.as_deref(), Some(&b"/etc"[..]));
    assert_eq!(tail[1].kind, tar::EntryType::Link);
    assert_eq!(tail[1].link.as_deref(), Some(&b"../../outside"[..]));
    assert_eq!(tail[2].link.as_deref(), Some(&long_target[..]));
}

#[test]
fn convenience_entries_read_back_as_written() {
    let tar = LayerBuilder::new()
        .dir("etc")
        .dir_with("tmp", Meta::new().mode(0o1777))
        .file("etc/hostname", b"box\n")
        .file_with("bin/su", b"#!", Meta::new().mode(0o4755).owner(0, 5))
        .symlink("etc/localtime", "/usr/share/zoneinfo/UTC")
        .hardlink("bin/su2", "bin/su")
        .whiteout("etc/old")
        .whiteout("gone")
        .opaque("var/lib")
        .opaque("")
        .char_device("dev/null", 1, 3, Meta::new().mode(0o666))
        .block_device("dev/sda", 8, 0, Meta::new())
        .fifo("run/pipe")
        .build();
    let got = read_all(&tar);
    let names: Vec<&[u8]> = got.iter().map(|e| e.name.as_slice()).collect();
    assert_eq!(
        names,
        [
            &b"etc/"[..],
            b"tmp/",
            b"etc/hostname",
            b"bin/su",
            b"etc/localtime",
            b"bin/su2",
            b"etc/.wh.old",
            b".wh.gone",
            b"var/lib/.wh..wh..opq",
            b".wh..wh..opq",
            b"dev/null",
            b"dev/sda",
            b"run/pipe",
        ]
    );
    assert_eq!(got[1].mode, 0o1777);
    assert_eq!(got[2].data, b"box\n");
    assert_eq!(got[3].mode, 0o4755);
    assert_eq!(got[5].kind, tar::EntryType::Link);
    assert_eq!(got[10].kind, tar::EntryType::Char);
    assert_eq!(got[11].kind, tar::EntryType::Block);
    assert_eq!(got[12].kind, tar::EntryType::Fifo);

    let mut archive = tar::Archive::new(tar.as_slice());
    let dev = archive.entries().unwrap().nth(10).unwrap().unwrap();
    assert_eq!(dev.header().device_major().unwrap(), Some(1));
    assert_eq!(dev.header().device_minor().unwrap(), Some(3));
}

#[test]
fn xattrs_arrive_as_pax_records() {
    let value = b"\x01\x00binary";
    let tar = LayerBuilder::new()
        .file_with(
            "f",
            b"",
            Meta::new().xattr("user.note", value).xattr("user.b", b"2"),
        )
        .build();
    let mut archive = tar::Archive::new(tar.as_slice());
    let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(entry.path_bytes().as_ref(), b"f");
    let pax: Vec<(Vec<u8>, Vec<u8>)> = entry
        .pax_extensions()
        .unwrap()
        .expect("pax header present")
        .map(|e| {
            let e = e.unwrap();
            (e.key_bytes().to_vec(), e.value_bytes().to_vec())
        })
        .collect();
    assert_eq!(
        pax,
        vec![
            (b"SCHILY.xattr.user.note".to_vec(), value.to_vec()),
            (b"SCHILY.xattr.user.b".to_vec(), b"2".to_vec()),
        ]
    );
}

#[test]
fn pax_record_lengths_count_themselves() {
    for n in [0, 1, 5, 80, 93, 94, 95, 990, 995, 9990] {
        let rec = pax_record(b"k", &vec![b'v'; n]);
        let (len, _) = std::str::from_utf8(&rec[..rec.iter().position(|b| *b == b' ').unwrap()])
            .map(|s| (s.parse::<usize>().unwrap(), ()))
            .unwrap();
        assert_eq!(len, rec.len(), "value of {n} bytes");
    }
}

#[test]
fn same_calls_give_same_digest() {
    let make = || {
        LayerBuilder::new()
            .dir("a")
            .file("a/b", b"hi")
            .into_layer(Compression::Gzip)
    };
    assert_eq!(make().digest, make().digest);
    let layer = make();
    assert_eq!(
        layer.diff_id,
        crate::image::sha256_digest(&LayerBuilder::new().dir("a").file("a/b", b"hi").build())
    );
}
