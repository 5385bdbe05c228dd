#![allow(clippy::unwrap_used)]

use super::wire::{put_key, put_varint, FIXED32, FIXED64, LEN, START_GROUP, VARINT};
use super::*;

fn sample() -> Vec<PodResources> {
    vec![
        PodResources {
            name: "llama-0".into(),
            namespace: "models".into(),
            containers: vec![
                ContainerResources {
                    name: "vllm".into(),
                    devices: vec![
                        ContainerDevices {
                            resource_name: "nvidia.com/gpu".into(),
                            device_ids: vec!["GPU-aaaa".into(), "GPU-bbbb".into()],
                        },
                        ContainerDevices {
                            resource_name: "example.com/nic".into(),
                            device_ids: vec!["eth1".into()],
                        },
                    ],
                },
                ContainerResources {
                    name: "sidecar".into(),
                    devices: vec![],
                },
            ],
        },
        PodResources {
            name: "idle".into(),
            namespace: "default".into(),
            containers: vec![],
        },
    ]
}

#[test]
fn bytes_follow_the_field_numbers_of_api_proto() {
    let pods = vec![PodResources {
        name: "p".into(),
        namespace: "n".into(),
        containers: vec![ContainerResources {
            name: "c".into(),
            devices: vec![ContainerDevices {
                resource_name: "r".into(),
                device_ids: vec!["d".into()],
            }],
        }],
    }];
    // pod_resources=1 { name=1 "p", namespace=2 "n", containers=3 { name=1 "c",
    //   devices=2 { resource_name=1 "r", device_ids=2 "d" } } }
    let expected = [
        0x0a, 0x13, 0x0a, 0x01, b'p', 0x12, 0x01, b'n', 0x1a, 0x0b, 0x0a, 0x01, b'c', 0x12, 0x06,
        0x0a, 0x01, b'r', 0x12, 0x01, b'd',
    ];
    assert_eq!(encode_list_response(&pods), expected);
    assert_eq!(decode_list_response(&expected).unwrap(), pods);
}

#[test]
fn a_response_round_trips() {
    let pods = sample();
    assert_eq!(
        decode_list_response(&encode_list_response(&pods)).unwrap(),
        pods
    );
    assert!(decode_list_response(&[]).unwrap().is_empty());
    assert!(encode_list_request().is_empty());
    decode_list_request(&[]).unwrap();
}

/// One unknown field of every wire type, as a newer kubelet could send.
fn unknown_fields(out: &mut Vec<u8>, field: u32) {
    put_key(out, field, VARINT);
    put_varint(out, u64::MAX);
    put_key(out, field + 1, FIXED64);
    out.extend_from_slice(&[1; 8]);
    put_key(out, field + 2, FIXED32);
    out.extend_from_slice(&[2; 4]);
    put_key(out, field + 3, LEN);
    put_varint(out, 3);
    out.extend_from_slice(b"xyz");
    // A group holding a varint and a nested group.
    put_key(out, field + 4, START_GROUP);
    put_key(out, 1, VARINT);
    put_varint(out, 7);
    put_key(out, 2, START_GROUP);
    put_key(out, 2, wire::END_GROUP);
    put_key(out, field + 4, wire::END_GROUP);
}

#[test]
fn unknown_fields_of_every_wire_type_are_skipped() {
    let mut devices = Vec::new();
    wire::put_string(&mut devices, 1, "nvidia.com/gpu");
    unknown_fields(&mut devices, 3);
    wire::put_bytes(&mut devices, 2, b"GPU-1");
    // topology = 3 { nodes = 1 { ID = 1: 0 } }
    wire::put_message(&mut devices, 3, |t| {
        wire::put_message(t, 1, |n| put_varint(n, 8))
    });
    let mut container = Vec::new();
    wire::put_string(&mut container, 1, "c");
    wire::put_bytes(&mut container, 2, &devices);
    // cpu_ids = 3, packed.
    wire::put_bytes(&mut container, 3, &[1, 2, 3]);
    unknown_fields(&mut container, 10);
    let mut pod = Vec::new();
    unknown_fields(&mut pod, 20);
    wire::put_string(&mut pod, 1, "p");
    wire::put_string(&mut pod, 2, "ns");
    wire::put_bytes(&mut pod, 3, &container);
    let mut msg = Vec::new();
    unknown_fields(&mut msg, 30);
    wire::put_bytes(&mut msg, 1, &pod);
    let pods = decode_list_response(&msg).unwrap();
    assert_eq!(pods.len(), 1);
    assert_eq!(
        (pods[0].name.as_str(), pods[0].namespace.as_str()),
        ("p", "ns")
    );
    let d = &pods[0].containers[0].devices[0];
    assert_eq!(d.resource_name, "nvidia.com/gpu");
    assert_eq!(d.device_ids, vec!["GPU-1".to_owned()]);
    decode_list_request(&msg).unwrap();
}

#[test]
fn every_truncation_fails_or_reads_a_prefix() {
    let pods = sample();
    let full = encode_list_response(&pods);
    let mut errors = 0;
    for cut in 0..full.len() {
        match decode_list_response(&full[..cut]) {
            Ok(read) => assert!(pods.starts_with(&read), "cut {cut}: {read:?}"),
            Err(_) => errors += 1,
        }
    }
    // Only the cuts between the two pods and at the start read cleanly.
    assert_eq!(errors, full.len() - 2);
}

#[test]
fn malformed_input_is_an_error() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "varint over 10 bytes",
            vec![
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ],
        ),
        ("field number 0", vec![0x02, 0x00]),
        ("wire type 6", vec![0x0e]),
        ("wire type 7", vec![0x0f]),
        ("end group without start", vec![0x14]),
        ("length past the end", vec![0x0a, 0x05, 0x00]),
        (
            "length of u64::MAX",
            vec![
                0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ],
        ),
        ("pod_resources as a varint", vec![0x08, 0x01]),
        ("name as fixed32", vec![0x0a, 0x05, 0x0d, 0, 0, 0, 0]),
        ("name not UTF-8", vec![0x0a, 0x03, 0x0a, 0x01, 0xff]),
        ("unclosed group", vec![0x23, 0x08, 0x01]),
        ("truncated fixed64", vec![0x09, 1, 2, 3]),
        ("truncated fixed32", vec![0x0d, 1]),
    ];
    for (what, bytes) in cases {
        assert!(decode_list_response(&bytes).is_err(), "{what}: accepted");
    }
    let deep: Vec<u8> = std::iter::repeat_n(0x23u8, 40).collect();
    assert!(matches!(
        decode_list_response(&deep),
        Err(DecodeError::TooDeep { .. })
    ));
    let err = decode_list_response(&[0x0a, 0x03, 0x0a, 0x01, 0xff]).unwrap_err();
    assert_eq!(err.to_string(), "PodResources field 1 is not UTF-8");
}

#[test]
fn a_message_over_16_mib_is_refused() {
    let big = vec![0u8; MAX_MESSAGE + 1];
    assert_eq!(
        decode_list_response(&big),
        Err(DecodeError::TooLarge {
            len: MAX_MESSAGE + 1
        })
    );
    assert!(decode_list_request(&big).is_err());
}

#[test]
fn mutated_input_never_panics() {
    let full = encode_list_response(&sample());
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut ok = 0;
    for _ in 0..5000 {
        let mut m = full.clone();
        for _ in 0..(next() % 4 + 1) {
            let i = (next() % m.len() as u64) as usize;
            m[i] = next() as u8;
        }
        if decode_list_response(&m).is_ok() {
            ok += 1;
        }
        let _ = decode_list_request(&m);
    }
    // Some mutations hit string bytes only and still read; most do not.
    assert!(ok > 0 && ok < 5000, "{ok}");
}
