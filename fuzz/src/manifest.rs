//! The warmup manifest (`infergate_warmup::Manifest::from_slice`): an error names the manifest's
//! location; a manifest that reads has 64 lower-case hex digits per digest and a total size, and
//! writes back to JSON that reads as the same manifest.

use infergate_warmup::Manifest;

const LOCATION: &str = "http://127.0.0.1:1/models/m/v1/manifest.json";

/// Parses `body` as a manifest and checks what a valid one promises.
pub fn check(body: &[u8]) -> Result<(), String> {
    let manifest = match Manifest::from_slice(body, LOCATION) {
        Ok(m) => m,
        Err(e) => {
            let msg = e.to_string();
            return if msg.contains(LOCATION) {
                Ok(())
            } else {
                Err(format!("error without the location: {msg}"))
            };
        }
    };
    for (i, f) in manifest.files.iter().enumerate() {
        let hex = f.sha256.len() == 64
            && f.sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !hex {
            return Err(format!("entry {i}: digest {:?} accepted", f.sha256));
        }
    }
    let total = manifest.total_size();
    if manifest.files.iter().any(|f| f.size > total) {
        return Err(format!("total size {total} below an entry's size"));
    }
    let text = serde_json::to_vec(&manifest).map_err(|e| e.to_string())?;
    let again = Manifest::from_slice(&text, LOCATION)
        .map_err(|e| format!("written manifest does not read back: {e}"))?;
    if again != manifest {
        return Err(format!("read {manifest:?}, read back {again:?}"));
    }
    Ok(())
}
