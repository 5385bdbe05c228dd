//! The `model` field of a `multipart/form-data` body (`/v1/audio/transcriptions`).
//!
//! The scan reads part headers only: from each delimiter it reads the part's headers (at most
//! [`MAX_PART_HEADERS`] bytes), and a part that is not `name="model"` (the audio file) is
//! skipped to the next delimiter with a substring search, never copied or decoded. It stops at
//! the `model` part. The body itself was read within `limits.max_body_bytes`, like every body
//! the gateway routes (a retry sends it again).

use memchr::memmem;

/// Longest header block of one part.
pub const MAX_PART_HEADERS: usize = 8 * 1024;
/// Longest model name read from a form.
const MAX_MODEL: usize = 1024;
/// Longest boundary (RFC 2046: 70).
const MAX_BOUNDARY: usize = 200;

/// Why no model could be read from a form.
#[derive(Debug, PartialEq, Eq)]
pub enum FormError {
    /// Not a form, or a form broken where the scan read it.
    Malformed(String),
    /// A well-formed form without a `model` field.
    Missing,
}

/// The boundary of a `multipart/form-data` content type.
pub fn boundary(content_type: &str) -> Result<&str, FormError> {
    let mut params = content_type.split(';');
    let mime = params.next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("multipart/form-data") {
        return Err(FormError::Malformed(format!(
            "content-type is {mime:?}, not multipart/form-data"
        )));
    }
    let b = params
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim().trim_matches('"'))
        .ok_or_else(|| FormError::Malformed("content-type has no boundary".into()))?;
    if b.is_empty() || b.len() > MAX_BOUNDARY {
        return Err(FormError::Malformed(format!(
            "boundary must be 1 to {MAX_BOUNDARY} characters"
        )));
    }
    Ok(b)
}

/// The value of the form's first `model` field.
pub fn form_model(content_type: &str, body: &[u8]) -> Result<String, FormError> {
    let boundary = boundary(content_type)?;
    let delim = format!("--{boundary}");
    let next = format!("\r\n--{boundary}");
    let finder = memmem::Finder::new(next.as_bytes());
    // The first delimiter may open the body or follow a preamble.
    let mut at = if body.starts_with(delim.as_bytes()) {
        delim.len()
    } else {
        finder
            .find(body)
            .map(|i| i + next.len())
            .ok_or_else(|| FormError::Malformed("no part boundary in the body".into()))?
    };
    loop {
        let rest = &body[at..];
        if rest.starts_with(b"--") {
            return Err(FormError::Missing);
        }
        // Transport padding, then the line break that ends the delimiter line.
        let line_end = memchr::memchr(b'\n', &rest[..rest.len().min(256)])
            .ok_or_else(|| FormError::Malformed("a part boundary line does not end".into()))?;
        let part = &rest[line_end + 1..];
        let head_end = memmem::find(&part[..part.len().min(MAX_PART_HEADERS)], b"\r\n\r\n")
            .ok_or_else(|| {
                FormError::Malformed(format!(
                    "a part's headers do not end within {MAX_PART_HEADERS} bytes"
                ))
            })?;
        let headers = &part[..head_end];
        let content = &part[head_end + 4..];
        let end = finder.find(content);
        if field_name(headers).as_deref() == Some("model") {
            let value = &content[..end.ok_or_else(|| {
                FormError::Malformed("the model field is not followed by a boundary".into())
            })?];
            if value.len() > MAX_MODEL {
                return Err(FormError::Malformed(format!(
                    "the model field is longer than {MAX_MODEL} bytes"
                )));
            }
            let model = std::str::from_utf8(value)
                .map_err(|_| FormError::Malformed("the model field is not UTF-8".into()))?
                .trim();
            if model.is_empty() {
                return Err(FormError::Missing);
            }
            return Ok(model.to_owned());
        }
        let Some(end) = end else {
            return Err(FormError::Malformed(
                "the form's last boundary is missing".into(),
            ));
        };
        at = body.len() - content.len() + end + next.len();
    }
}

/// The `name` of a part's `Content-Disposition: form-data` header.
fn field_name(headers: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(headers).ok()?;
    text.split("\r\n").find_map(|line| {
        let (k, v) = line.split_once(':')?;
        if !k.trim().eq_ignore_ascii_case("content-disposition") {
            return None;
        }
        v.split(';').skip(1).find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("name")
                .then(|| v.trim().trim_matches('"').to_owned())
        })
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const CT: &str = "multipart/form-data; boundary=XyZ";

    fn form(parts: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = Vec::new();
        for (name, value) in parts {
            b.extend_from_slice(b"--XyZ\r\n");
            b.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\n")
                    .as_bytes(),
            );
            b.extend_from_slice(value);
            b.extend_from_slice(b"\r\n");
        }
        b.extend_from_slice(b"--XyZ--\r\n");
        b
    }

    #[test]
    fn the_model_part_is_found_after_a_file() {
        let audio: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let body = form(&[
            ("file", &audio),
            ("model", b"whisper-large"),
            ("language", b"en"),
        ]);
        assert_eq!(form_model(CT, &body).unwrap(), "whisper-large");
        let quoted = "Multipart/Form-Data; charset=utf-8; boundary=\"XyZ\"";
        assert_eq!(form_model(quoted, &body).unwrap(), "whisper-large");
        let mut preamble = b"ignored preamble\r\n".to_vec();
        preamble.extend_from_slice(&body);
        assert_eq!(form_model(CT, &preamble).unwrap(), "whisper-large");
    }

    #[test]
    fn a_file_holding_the_boundary_prefix_is_skipped_whole() {
        let body = form(&[("file", b"--XyZ in the middle\r\n--Xy"), ("model", b" w ")]);
        assert_eq!(form_model(CT, &body).unwrap(), "w");
    }

    #[test]
    fn missing_and_malformed_forms_are_told_apart() {
        let body = form(&[("file", b"abc")]);
        assert_eq!(form_model(CT, &body), Err(FormError::Missing));
        assert!(matches!(
            form_model("application/json", &body),
            Err(FormError::Malformed(m)) if m.contains("not multipart/form-data")
        ));
        assert!(matches!(
            form_model("multipart/form-data", &body),
            Err(FormError::Malformed(m)) if m.contains("no boundary")
        ));
        let cut = &body[..body.len() - 12];
        assert!(matches!(form_model(CT, cut), Err(FormError::Malformed(_))));
        assert!(matches!(
            form_model(CT, b"garbage"),
            Err(FormError::Malformed(_))
        ));
        let long_head = format!("--XyZ\r\n{}", "x".repeat(MAX_PART_HEADERS + 10));
        assert!(matches!(
            form_model(CT, long_head.as_bytes()),
            Err(FormError::Malformed(m)) if m.contains("headers do not end")
        ));
    }
}
