//! Frames from any ordered byte stream: `u32 BE length ‖ message` (spec/sync.md, section 5).
//! The length is checked before anything is allocated for the body, and the time the first
//! byte of a frame arrived is kept so the caller can cut off a peer that trickles (slowloris).

use super::{MAX_FRAME, SyncError};

#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// When the first byte of the frame now being received arrived (ms), moved on by our own
    /// waits and by the transport vouching for a lossy link.
    started_ms: Option<u64>,
    /// The same, moved on only by our own waits: however long a link is vouched for, a frame
    /// must arrive within the hard limit of this.
    hard_started_ms: Option<u64>,
}

impl FrameDecoder {
    /// Appends received bytes; returns every complete frame body.
    pub fn push(&mut self, mut bytes: &[u8], now_ms: u64) -> Result<Vec<Vec<u8>>, SyncError> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            if self.buf.is_empty() {
                self.started_ms = Some(now_ms);
                self.hard_started_ms = Some(now_ms);
            }
            if self.buf.len() < 4 {
                let take = (4 - self.buf.len()).min(bytes.len());
                self.buf.extend_from_slice(&bytes[..take]);
                bytes = &bytes[take..];
                if self.buf.len() < 4 {
                    break;
                }
            }
            let n = self.len();
            if n > MAX_FRAME {
                return Err(SyncError::FrameTooLarge(n));
            }
            let have = self.buf.len() - 4;
            let take = (n - have).min(bytes.len());
            self.buf.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.buf.len() == 4 + n {
                out.push(self.buf.split_off(4));
                self.buf.clear();
                self.started_ms = None;
                self.hard_started_ms = None;
            }
        }
        Ok(out)
    }

    fn len(&self) -> usize {
        u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize
    }

    /// Restarts both clocks of a partly received frame (the wait was ours, not the peer's).
    pub fn restart_clock(&mut self, now_ms: u64) {
        if self.started_ms.is_some() {
            self.started_ms = Some(now_ms);
            self.hard_started_ms = Some(now_ms);
        }
    }

    /// Restarts only the ordinary clock: the transport vouches that the link is slow, not the
    /// peer stalled. The hard clock runs on.
    pub fn extend_for_link(&mut self, now_ms: u64) {
        if self.started_ms.is_some() {
            self.started_ms = Some(now_ms);
        }
    }

    /// When the frame now being received started, if one is partly here.
    pub fn partial_since(&self) -> Option<u64> {
        self.started_ms
    }

    /// When it started as far as the hard limit counts.
    pub fn partial_since_hard(&self) -> Option<u64> {
        self.hard_started_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_anywhere_reassemble() {
        let mut wire = Vec::new();
        for body in [&b"abc"[..], b"", b"0123456789"] {
            wire.extend_from_slice(&(body.len() as u32).to_be_bytes());
            wire.extend_from_slice(body);
        }
        for cut in 0..wire.len() {
            let mut d = FrameDecoder::default();
            let mut got = d.push(&wire[..cut], 1).expect("first part");
            got.extend(d.push(&wire[cut..], 2).expect("second part"));
            assert_eq!(got, vec![b"abc".to_vec(), Vec::new(), b"0123456789".to_vec()]);
            assert_eq!(d.partial_since(), None);
        }
    }

    #[test]
    fn an_oversized_length_is_refused_before_allocating() {
        let mut d = FrameDecoder::default();
        let err = d.push(&u32::MAX.to_be_bytes(), 0).expect_err("too large");
        assert_eq!(err, SyncError::FrameTooLarge(u32::MAX as usize));
    }

    #[test]
    fn a_frame_of_exactly_max_frame_is_taken_one_more_byte_is_not() {
        let mut d = FrameDecoder::default();
        assert!(d.push(&(MAX_FRAME as u32).to_be_bytes(), 0).expect("at the limit").is_empty());
        let got = d.push(&vec![7u8; MAX_FRAME], 1).expect("body");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].len(), MAX_FRAME);
        let err = FrameDecoder::default().push(&(MAX_FRAME as u32 + 1).to_be_bytes(), 0).expect_err("over");
        assert_eq!(err, SyncError::FrameTooLarge(MAX_FRAME + 1));
    }

    #[test]
    fn the_clocks_start_at_a_frames_first_byte_and_stop_when_it_is_whole() {
        let mut d = FrameDecoder::default();
        assert_eq!((d.partial_since(), d.partial_since_hard()), (None, None));
        // Nothing partial: neither restart nor a vouched-for link starts a clock.
        d.restart_clock(5);
        d.extend_for_link(5);
        assert_eq!((d.partial_since(), d.partial_since_hard()), (None, None));
        // The first two bytes of a header, then the rest of it and part of the body.
        assert!(d.push(&[0, 0], 10).expect("part").is_empty());
        assert_eq!((d.partial_since(), d.partial_since_hard()), (Some(10), Some(10)));
        assert!(d.push(&[0, 3, b'a'], 20).expect("part").is_empty());
        assert_eq!(d.partial_since(), Some(10), "later bytes of the same frame do not restart it");
        d.extend_for_link(30);
        assert_eq!((d.partial_since(), d.partial_since_hard()), (Some(30), Some(10)));
        d.restart_clock(40);
        assert_eq!((d.partial_since(), d.partial_since_hard()), (Some(40), Some(40)));
        // The end of this frame and the first byte of the next: the next frame's clock starts.
        let got = d.push(&[b'b', b'c', 0], 50).expect("whole");
        assert_eq!(got, vec![b"abc".to_vec()]);
        assert_eq!((d.partial_since(), d.partial_since_hard()), (Some(50), Some(50)));
        let got = d.push(&[0, 0, 0], 60).expect("an empty frame");
        assert_eq!(got, vec![Vec::<u8>::new()]);
        assert_eq!((d.partial_since(), d.partial_since_hard()), (None, None));
    }
}
