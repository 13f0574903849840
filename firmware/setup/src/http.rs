//! Requests and responses as plain values, so routes are testable without sockets, plus the
//! security headers every response carries.

use std::collections::HashMap;
use std::net::SocketAddr;

use crate::route::Page;

/// Largest request body read (forms, pasted PEM).
pub const MAX_BODY_BYTES: usize = 128 * 1024;
/// Largest request body on the routes that take a file upload ([`Page::takes_upload`]): a
/// scoping CSV of 1,000 rows with the longest emails and group names is about 510 KiB.
pub const MAX_UPLOAD_BYTES: usize = 1024 * 1024;
/// Most parts accepted in one multipart body.
const MAX_PARTS: usize = 64;

/// The body limit for a request to `page`.
pub(crate) fn body_limit(page: Option<Page>) -> usize {
    if page.is_some_and(Page::takes_upload) {
        MAX_UPLOAD_BYTES
    } else {
        MAX_BODY_BYTES
    }
}

/// A `multipart/form-data` body, parsed: text fields and files by field name (last wins).
#[derive(Debug, Default)]
pub struct Multipart {
    /// Text field name → value.
    pub fields: HashMap<String, String>,
    /// Field name → file content. A file input left empty sends a part with an empty file
    /// name and no content; it is not listed.
    pub files: HashMap<String, Vec<u8>>,
}

/// Parses a whole in-memory multipart body with multer. The body is one ready chunk, so every
/// future multer returns completes on its first poll; anything else is refused.
pub fn parse_multipart(body: &[u8], boundary: String) -> Result<Multipart, String> {
    use futures_util::FutureExt;
    let limit = u64::try_from(MAX_UPLOAD_BYTES).unwrap_or(u64::MAX);
    let constraints = multer::Constraints::new().size_limit(
        multer::SizeLimit::new()
            .whole_stream(limit)
            .per_field(limit),
    );
    let chunk = bytes::Bytes::copy_from_slice(body);
    let stream = futures_util::stream::once(std::future::ready(Ok::<_, std::io::Error>(chunk)));
    let mut multipart = multer::Multipart::with_constraints(stream, boundary, constraints);
    let parse = async move {
        let mut parsed = Multipart::default();
        let mut parts = 0usize;
        while let Some(field) = multipart.next_field().await.map_err(|e| e.to_string())? {
            parts += 1;
            if parts > MAX_PARTS {
                return Err(format!("more than {MAX_PARTS} form fields"));
            }
            let Some(name) = field.name().map(str::to_owned) else {
                continue;
            };
            let is_file = field.file_name().is_some();
            let data = field.bytes().await.map_err(|e| e.to_string())?;
            if is_file {
                if !data.is_empty() {
                    parsed.files.insert(name, data.to_vec());
                }
            } else {
                let text = String::from_utf8(data.to_vec())
                    .map_err(|_| format!("form field {name:?} is not UTF-8 text"))?;
                parsed.fields.insert(name, text);
            }
        }
        Ok(parsed)
    };
    parse
        .now_or_never()
        .unwrap_or_else(|| Err("the form data is incomplete".into()))
}

/// HTTP method subset the page uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Head,
    Post,
    Other,
}

/// A request as the routes see it.
#[derive(Debug, Clone)]
pub(crate) struct Req {
    pub(crate) method: Method,
    pub(crate) path: String,
    /// The route `method` and `path` name, if any ([`Page::find`]).
    pub(crate) page: Option<Page>,
    pub(crate) query: HashMap<String, String>,
    /// Lower-case header names; the first value of each.
    pub(crate) headers: HashMap<String, String>,
    pub(crate) body: Vec<u8>,
    /// The real client (through the TLS front).
    pub(crate) client: SocketAddr,
}

impl Req {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// A cookie's value.
    pub(crate) fn cookie(&self, name: &str) -> Option<&str> {
        self.header("cookie")?.split(';').find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then_some(v)
        })
    }

    /// The `Host` header if it is a plausible host[:port] (no injection into URLs we build).
    pub(crate) fn host(&self) -> Option<&str> {
        let host = self.header("host")?;
        plausible_host(host).then_some(host)
    }

    /// Whether the request comes from this very origin, `https://<Host>`.
    ///
    /// `Origin` must match exactly. Browsers send `Origin: null` on every form POST of a page
    /// served with `Referrer-Policy: no-referrer` (Fetch standard, "append a request Origin
    /// header"), so for a `null` or absent `Origin` the browser's own `Sec-Fetch-Site:
    /// same-origin` (a header scripts cannot set) is required instead, or a matching `Referer`.
    /// A `Sec-Fetch-Site` other than `same-origin` is refused whatever else the request says.
    pub(crate) fn same_origin(&self) -> bool {
        let Some(host) = self.host() else {
            return false;
        };
        let fetch_site = self.header("sec-fetch-site");
        if fetch_site.is_some_and(|site| site != "same-origin") {
            return false;
        }
        let ours = format!("https://{host}");
        match (self.header("origin"), self.header("referer")) {
            (Some(origin), _) if origin != "null" => origin.eq_ignore_ascii_case(&ours),
            (_, Some(referer)) => {
                let lower = referer.to_ascii_lowercase();
                let ours = ours.to_ascii_lowercase();
                lower == ours || lower.starts_with(&format!("{ours}/"))
            }
            (_, None) => fetch_site == Some("same-origin"),
        }
    }

    /// The boundary when the body is `multipart/form-data`.
    fn multipart_boundary(&self) -> Option<String> {
        let content_type = self.header("content-type")?;
        let mime = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        (mime == "multipart/form-data")
            .then(|| multer::parse_boundary(content_type).ok())
            .flatten()
    }

    /// The body's multipart form, `None` when it is not multipart.
    pub(crate) fn multipart(&self) -> Option<Result<Multipart, String>> {
        self.multipart_boundary()
            .map(|boundary| parse_multipart(&self.body, boundary))
    }

    /// The body's text fields (last value wins), urlencoded or multipart. An unreadable
    /// multipart body gives no fields (so its CSRF check fails).
    pub(crate) fn form(&self) -> HashMap<String, String> {
        match self.multipart() {
            Some(Ok(parsed)) => parsed.fields,
            Some(Err(_)) => HashMap::new(),
            None => form_urlencoded::parse(&self.body).into_owned().collect(),
        }
    }

    /// A file uploaded under `name` as text: `Ok(None)` when no file was chosen (or the body
    /// is not multipart), an error for unreadable form data or text that is not UTF-8.
    pub(crate) fn upload_text(&self, name: &str) -> Result<Option<String>, String> {
        let Some(parsed) = self.multipart() else {
            return Ok(None);
        };
        let mut parsed = parsed?;
        match parsed.files.remove(name) {
            None => Ok(None),
            Some(bytes) => {
                let text = String::from_utf8(bytes)
                    .map_err(|_| "The file is not UTF-8 text; save it as UTF-8 and try again.")?;
                Ok(Some(
                    text.strip_prefix('\u{feff}')
                        .map(str::to_owned)
                        .unwrap_or(text),
                ))
            }
        }
    }
}

/// Splits `path?query`.
pub(crate) fn split_url(url: &str) -> (String, HashMap<String, String>) {
    match url.split_once('?') {
        Some((path, query)) => (
            path.to_owned(),
            form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        ),
        None => (url.to_owned(), HashMap::new()),
    }
}

/// A response as the routes build it.
#[derive(Debug, Clone)]
pub(crate) struct Resp {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Resp {
    pub(crate) fn html(status: u16, markup: maud::Markup) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".into(), "text/html; charset=utf-8".into())],
            body: markup.into_string().into_bytes(),
        }
    }

    pub(crate) fn json(status: u16, value: &serde_json::Value) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: serde_json::to_vec_pretty(value).unwrap_or_default(),
        }
    }

    pub(crate) fn text(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
        }
    }

    /// `303 See Other` to a local path (never an absolute URL taken from input).
    pub(crate) fn see_other(location: &str) -> Self {
        Self {
            status: 303,
            headers: vec![("Location".into(), location.into())],
            body: Vec::new(),
        }
    }

    pub(crate) fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Marks the response as a file download named `file_name` (a fixed, safe name).
    pub(crate) fn attachment(self, file_name: &str) -> Self {
        self.with_header(
            "Content-Disposition",
            format!("attachment; filename=\"{file_name}\""),
        )
    }

    /// Adds the session cookie.
    pub(crate) fn with_session_cookie(self, id: &str) -> Self {
        self.with_header(
            "Set-Cookie",
            format!(
                "{}={id}; Path=/; Secure; HttpOnly; SameSite=Strict",
                crate::session::SESSION_COOKIE
            ),
        )
    }

    /// Expires the session cookie.
    pub(crate) fn clearing_session_cookie(self) -> Self {
        self.with_header(
            "Set-Cookie",
            format!(
                "{}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0",
                crate::session::SESSION_COOKIE
            ),
        )
    }
}

/// Headers on every response: no inline script, no framing, no referrer, no caching.
/// `form_action_extra` is the Box authorize origin ("Connect to Box" posts, then redirects there).
/// `scripts` allows the page's own external scripts (`/static/copy.js` on the Box page); inline
/// script stays forbidden everywhere.
pub(crate) fn security_headers(
    form_action_extra: Option<&str>,
    scripts: bool,
) -> Vec<(String, String)> {
    let form_action = match form_action_extra {
        Some(origin) => format!("'self' {origin}"),
        None => "'self'".into(),
    };
    let script = if scripts { " script-src 'self';" } else { "" };
    vec![
        (
            "Content-Security-Policy".into(),
            format!(
                "default-src 'none';{script} style-src 'self'; img-src 'self'; form-action {form_action}; \
                 frame-ancestors 'none'; base-uri 'none'"
            ),
        ),
        ("X-Frame-Options".into(), "DENY".into()),
        ("X-Content-Type-Options".into(), "nosniff".into()),
        ("Referrer-Policy".into(), "no-referrer".into()),
        ("Cache-Control".into(), "no-store".into()),
        ("Cross-Origin-Opener-Policy".into(), "same-origin".into()),
        ("Cross-Origin-Resource-Policy".into(), "same-origin".into()),
    ]
}

/// Whether a `Host` header (or its name part) is 1–255 bytes of letters, digits and `.-:[]`:
/// nothing that could inject into a URL or a redirect built from it.
pub(crate) fn plausible_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> Req {
        Req {
            method: Method::Post,
            path: "/".into(),
            page: None,
            query: HashMap::new(),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: Vec::new(),
            client: "192.0.2.1:5000".parse().unwrap(),
        }
    }

    /// Origin must be exactly this page's HTTPS origin; Referer is the fallback.
    #[test]
    fn origin_rules() {
        let host = ("host", "box.lan:8443");
        assert!(req(&[host, ("origin", "https://box.lan:8443")]).same_origin());
        assert!(!req(&[host, ("origin", "http://box.lan:8443")]).same_origin());
        assert!(!req(&[host, ("origin", "https://evil.example")]).same_origin());
        assert!(!req(&[host, ("origin", "null")]).same_origin());
        assert!(req(&[host, ("referer", "https://box.lan:8443/box")]).same_origin());
        assert!(!req(&[host, ("referer", "https://box.lan:8443.evil/")]).same_origin());
        assert!(!req(&[host]).same_origin());
        // What a browser sends for our own form under Referrer-Policy: no-referrer.
        let same = ("sec-fetch-site", "same-origin");
        assert!(req(&[host, ("origin", "null"), same]).same_origin());
        assert!(req(&[host, same]).same_origin());
        let cross = ("sec-fetch-site", "cross-site");
        assert!(!req(&[host, ("origin", "null"), cross]).same_origin());
        assert!(!req(&[host, ("origin", "https://box.lan:8443"), cross]).same_origin());
        assert!(!req(&[host, ("origin", "https://evil.example"), same]).same_origin());
        assert!(!req(&[("host", "a\"b"), ("origin", "https://a\"b")]).same_origin());
    }

    /// A browser's multipart body: text fields, a chosen file, an empty file input.
    #[test]
    fn multipart_forms() {
        let mut body = b"--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\ntok\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"scope_file\"; filename=\"s.csv\"\r\n\
                    Content-Type: text/csv\r\n\r\nEmail\r\na@example.com\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"key_file\"; filename=\"\"\r\n\
                    Content-Type: application/octet-stream\r\n\r\n\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"bin\"; filename=\"b\"\r\n\r\n"
            .to_vec();
        body.extend_from_slice(&[0xff, 0xfe, 0x00]);
        body.extend_from_slice(b"\r\n--XyZ--\r\n");
        let mut r = req(&[("content-type", "multipart/form-data; boundary=XyZ")]);
        r.body = body;
        let form = r.form();
        assert_eq!(form.get("csrf").map(String::as_str), Some("tok"));
        assert!(!form.contains_key("scope_file"));
        assert_eq!(
            r.upload_text("scope_file").unwrap().as_deref(),
            Some("Email\r\na@example.com")
        );
        assert_eq!(r.upload_text("key_file").unwrap(), None);
        assert!(r.upload_text("bin").is_err(), "not UTF-8");
        // Truncated or foreign bodies give no fields, so the CSRF check fails.
        r.body.truncate(40);
        assert!(r.form().is_empty());
        let mut plain = req(&[("content-type", "application/x-www-form-urlencoded")]);
        plain.body = b"csrf=a%20b".to_vec();
        assert_eq!(plain.form().get("csrf").map(String::as_str), Some("a b"));
        assert_eq!(plain.upload_text("x").unwrap(), None);
    }

    /// Cookies are found by exact name.
    #[test]
    fn cookies() {
        let r = req(&[("cookie", "a=1; __Host-boxidr=abc; __Host-boxidr-oauth=def")]);
        assert_eq!(r.cookie("__Host-boxidr"), Some("abc"));
        assert_eq!(r.cookie("__Host-boxidr-oauth"), Some("def"));
        assert_eq!(r.cookie("b"), None);
    }
}
