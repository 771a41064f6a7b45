//! Message text with its web links clickable: only `http://` and `https://` links, shown as
//! written (the hover shows where they go), never other schemes.

use eframe::egui::{self, Color32, RichText};

/// Splits a line into plain text and links, in order (`true` for a link).
pub fn split_links(line: &str) -> Vec<(bool, &str)> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(start) = next_link(rest) {
        let tail = &rest[start..];
        let end = tail.find(char::is_whitespace).unwrap_or(tail.len());
        // Punctuation that ends a sentence is not part of the link.
        let link = tail[..end].trim_end_matches(['.', ',', ';', ':', '!', '?', ')', '"', '\'']);
        if link.len() <= "https://".len() {
            out.push((false, &rest[..start + end]));
            rest = &rest[start + end..];
            continue;
        }
        if start > 0 {
            out.push((false, &rest[..start]));
        }
        out.push((true, link));
        rest = &rest[start + link.len()..];
    }
    if !rest.is_empty() {
        out.push((false, rest));
    }
    out
}

/// Where the next link starts: `http://` or `https://` at the start or after whitespace.
fn next_link(s: &str) -> Option<usize> {
    let mut from = 0;
    loop {
        let i = ["http://", "https://"].iter().filter_map(|p| s[from..].find(p).map(|i| i + from)).min()?;
        if i == 0 || s[..i].ends_with(char::is_whitespace) || s[..i].ends_with(['(', '<', '"']) {
            return Some(i);
        }
        from = i + 1;
    }
}

/// A message's text: a plain label, or lines of text and hyperlinks when it has links.
pub fn message_text(ui: &mut egui::Ui, text: &str, color: Color32, size: f32) {
    if next_link(text).is_none() {
        ui.label(RichText::new(text).color(color).size(size));
        return;
    }
    for line in text.lines() {
        ui.horizontal_wrapped(|ui| {
            ui.spacing_mut().item_spacing.x = 0.0;
            for (link, seg) in split_links(line) {
                if link {
                    ui.hyperlink_to(RichText::new(seg).size(size), seg).on_hover_text(seg);
                } else {
                    ui.label(RichText::new(seg).color(color).size(size));
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::split_links;

    #[test]
    fn links_are_found_and_trailing_punctuation_is_left_out() {
        assert_eq!(split_links("no links here"), vec![(false, "no links here")]);
        assert_eq!(
            split_links("see https://example.org/a?b=1, then (http://x.y)."),
            vec![
                (false, "see "),
                (true, "https://example.org/a?b=1"),
                (false, ", then ("),
                (true, "http://x.y"),
                (false, ").")
            ]
        );
        // Not a link: inside a word, another scheme, or a bare prefix.
        assert_eq!(split_links("xhttps://a.b javascript:alert(1)"), vec![(false, "xhttps://a.b javascript:alert(1)")]);
        assert_eq!(split_links("https://"), vec![(false, "https://")]);
    }
}
