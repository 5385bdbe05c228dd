//! `multipart/form-data` bodies (RFC 7578), read whole from a buffered body.

/// One form field.
#[derive(Debug, PartialEq, Eq)]
pub struct Part<'a> {
    pub name: String,
    pub filename: Option<String>,
    pub data: &'a [u8],
}

/// The boundary of a `multipart/form-data` content type, unquoted.
pub fn boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    let mime = params.next()?.trim();
    if !mime.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.find_map(|p| {
        let (key, value) = p.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"').to_owned())
            .filter(|b| !b.is_empty())
    })
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// `name="value"` from a `Content-Disposition` header value.
fn disposition_param(value: &str, key: &str) -> Option<String> {
    value.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(key)
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// The parts of `body`; an error says what is malformed.
pub fn parse<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<Part<'a>>, String> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut pos = find(body, delimiter, 0)
        .ok_or_else(|| format!("the body does not contain the boundary `{boundary}`"))?
        + delimiter.len();
    let mut parts = Vec::new();
    loop {
        if body.get(pos..pos + 2) == Some(b"--") {
            return Ok(parts);
        }
        let head_start = find(body, b"\r\n", pos).ok_or("a part has no header line")? + 2;
        let head_end = find(body, b"\r\n\r\n", head_start)
            .ok_or("a part's headers do not end with a blank line")?;
        let head = String::from_utf8_lossy(body.get(head_start..head_end).unwrap_or_default());
        let mut closing = Vec::with_capacity(delimiter.len() + 2);
        closing.extend_from_slice(b"\r\n");
        closing.extend_from_slice(delimiter);
        let data_start = head_end + 4;
        let data_end = find(body, &closing, data_start)
            .ok_or("a part is not followed by the boundary (a truncated body?)")?;
        let disposition = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.trim()
                    .eq_ignore_ascii_case("content-disposition")
                    .then(|| value.trim().to_owned())
            })
            .ok_or("a part has no Content-Disposition header")?;
        let name = disposition_param(&disposition, "name")
            .ok_or("a part's Content-Disposition has no name")?;
        parts.push(Part {
            name,
            filename: disposition_param(&disposition, "filename"),
            data: body.get(data_start..data_end).unwrap_or_default(),
        });
        pos = data_end + closing.len();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_files_are_read() {
        assert_eq!(
            boundary("multipart/form-data; boundary=\"xyz\"").as_deref(),
            Some("xyz")
        );
        assert_eq!(boundary("application/json"), None);
        let body = b"--xyz\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper\r\n\
--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\nRIFF\r\n\x00\x01\r\n--xyz--\r\n";
        let parts = parse(body, "xyz").unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            (parts[0].name.as_str(), parts[0].data),
            ("model", &b"whisper"[..])
        );
        assert_eq!(parts[1].filename.as_deref(), Some("a.wav"));
        assert_eq!(parts[1].data, b"RIFF\r\n\x00\x01");
        assert!(parse(
            b"--xyz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nno end",
            "xyz"
        )
        .is_err());
        assert!(parse(b"nothing", "xyz").is_err());
    }
}
