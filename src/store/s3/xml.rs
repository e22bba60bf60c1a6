//! The few pieces of S3's XML we read: error codes, listings, upload ids, lock configuration.
//!
//! Public only so that the fuzz target `s3_xml` (tests/fuzz) runs these very parsers on
//! hostile response bodies; nothing outside `store` should need them.

use quick_xml::Reader;
use quick_xml::events::Event;

/// Text of the first element named `tag` anywhere in `xml`.
pub fn first_text(xml: &str, tag: &str) -> Option<String> {
    all_text(xml, tag).into_iter().next()
}

/// Texts of every element named `tag`, in document order.
pub fn all_text(xml: &str, tag: &str) -> Vec<String> {
    records(xml, tag, &[]).into_iter().map(|r| r.text).collect()
}

/// One element and the texts of some of its children.
#[derive(Debug, Default)]
pub struct Element {
    /// The element's own text (for leaf elements).
    pub text: String,
    /// `(child name, text)` for the requested children.
    pub children: Vec<(String, String)>,
}

impl Element {
    /// The text of the first requested child named `name`.
    pub fn child(&self, name: &str) -> Option<&str> {
        self.children
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Every element named `tag`, with the texts of its descendants named in `children`.
pub fn records(xml: &str, tag: &str, children: &[&str]) -> Vec<Element> {
    let mut reader = Reader::from_str(xml);
    let mut out = Vec::new();
    let mut depth_in: Option<usize> = None;
    let mut stack: Vec<String> = Vec::new();
    let mut cur = Element::default();
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                stack.push(name.clone());
                if depth_in.is_none() && name == tag {
                    depth_in = Some(stack.len());
                    cur = Element::default();
                }
            }
            Ok(Event::Empty(e)) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if depth_in.is_none() && name == tag {
                    out.push(Element::default());
                }
            }
            Ok(Event::Text(t)) => {
                if let (Some(d), Some(name)) = (depth_in, stack.last()) {
                    let text = t.unescape().map(|c| c.into_owned()).unwrap_or_default();
                    if stack.len() == d {
                        cur.text.push_str(&text);
                    } else if children.contains(&name.as_str()) {
                        cur.children.push((name.clone(), text));
                    }
                }
            }
            Ok(Event::End(_)) => {
                if depth_in == Some(stack.len()) {
                    out.push(std::mem::take(&mut cur));
                    depth_in = None;
                }
                stack.pop();
            }
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => {}
        }
    }
    out
}

/// Escapes text for an XML body we send.
pub fn escape(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_and_listing() {
        let err = "<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>Reduce &amp; \
                   retry</Message></Error>";
        assert_eq!(first_text(err, "Code").as_deref(), Some("SlowDown"));
        assert_eq!(
            first_text(err, "Message").as_deref(),
            Some("Reduce & retry")
        );
        let list = "<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>a/1</Key>\
                    <Size>3</Size></Contents><Contents><Key>a/2</Key><Size>5</Size></Contents>\
                    </ListBucketResult>";
        let r = records(list, "Contents", &["Key", "Size"]);
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].child("Key"), Some("a/2"));
        assert_eq!(r[1].child("Size"), Some("5"));
        assert_eq!(first_text(list, "IsTruncated").as_deref(), Some("false"));
    }
}
