//! Query-string parameters.

/// The first value of `name` in `query` (`a=1&b=2`), percent- and `+`-decoded. Invalid
/// escapes are kept as they are; invalid UTF-8 is replaced.
pub fn param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(key) == name).then(|| decode(value))
    })
}

fn hex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).and_then(|h| hex(*h)),
                bytes.get(i + 2).and_then(|l| hex(*l)),
            ) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b),
            },
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_found_and_decoded() {
        let q = "filename=a%20b_00001_.png&type=output&x=%zz+y&clientId";
        assert_eq!(param(q, "filename").as_deref(), Some("a b_00001_.png"));
        assert_eq!(param(q, "type").as_deref(), Some("output"));
        assert_eq!(param(q, "x").as_deref(), Some("%zz y"));
        assert_eq!(param(q, "clientId").as_deref(), Some(""));
        assert_eq!(param(q, "subfolder"), None);
    }
}
