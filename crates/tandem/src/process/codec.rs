//! The codec: serde values to bytes with `postcard`, and the file descriptors that handles
//! (a `Connection`, a `Value`, …) carry beside them.
//!
//! A handle serializes as an index into the message's descriptor list. While tandem encodes
//! a message, a thread-local collects the descriptors that handles hand it; the transport
//! sends them with `SCM_RIGHTS` beside the bytes. While tandem decodes, the received
//! descriptors are available to the handles' `Deserialize` in the same way. Outside tandem's
//! own encoder (say, `serde_json`), a handle refuses to serialize instead of writing a number
//! that would mean nothing in another process.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cell::RefCell;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

/// At most this many descriptors travel in one message (the kernel's `SCM_MAX_FD` is 253).
pub(crate) const MAX_FDS: usize = 253;

thread_local! {
    /// Descriptors handed over by handles during the current `encode`, if one is running.
    static OUTGOING: RefCell<Option<Vec<RawFd>>> = const { RefCell::new(None) };
    /// Descriptors received with the message the current `decode` reads, if one is running.
    static INCOMING: RefCell<Option<Vec<Option<OwnedFd>>>> = const { RefCell::new(None) };
    /// The message of the last error a tandem handle raised inside serde: postcard keeps
    /// only "custom error", so the handle leaves its words here for `encode`/`decode`.
    static HANDLE_ERROR: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// A serde error raised by a tandem handle, its message kept for the caller.
pub(crate) fn handle_error<E: serde::ser::Error>(message: impl Into<String>) -> E {
    let message = message.into();
    let err = E::custom(&message);
    HANDLE_ERROR.with(|h| *h.borrow_mut() = Some(message));
    err
}

/// As [`handle_error`], for deserialization.
pub(crate) fn handle_de_error<E: serde::de::Error>(message: impl Into<String>) -> E {
    let message = message.into();
    let err = E::custom(&message);
    HANDLE_ERROR.with(|h| *h.borrow_mut() = Some(message));
    err
}

/// The words for a postcard error: a handle's own message if one raised it.
fn explain(e: postcard::Error) -> String {
    let handle = HANDLE_ERROR.with(|h| h.borrow_mut().take());
    match (e, handle) {
        (postcard::Error::SerdeSerCustom | postcard::Error::SerdeDeCustom, Some(m)) => m,
        (postcard::Error::SerdeSerCustom, None) => {
            "a Serialize implementation in the value returned an error".into()
        }
        (postcard::Error::SerdeDeCustom, None) => {
            "a Deserialize implementation in the value returned an error".into()
        }
        (e, _) => e.to_string(),
    }
}

/// Why a value could not be encoded or decoded.
#[derive(Debug)]
pub(crate) struct CodecError(pub(crate) String);

/// Appends `value`'s encoding to `buf`; the descriptors its handles carry (borrowed from the
/// handles inside `value`, which must stay alive until they are sent).
pub(crate) fn encode_into<T: Serialize + ?Sized>(
    value: &T,
    buf: Vec<u8>,
) -> Result<(Vec<u8>, Vec<RawFd>), CodecError> {
    struct Reset(Option<Vec<RawFd>>);
    impl Drop for Reset {
        fn drop(&mut self) {
            let previous = self.0.take();
            OUTGOING.with(|o| *o.borrow_mut() = previous);
        }
    }
    // Nested encodes (a handle whose own serialization encodes) keep their own list.
    let reset = Reset(OUTGOING.with(|o| o.borrow_mut().replace(Vec::new())));
    HANDLE_ERROR.with(|h| h.borrow_mut().take());
    let result = postcard::to_extend(value, buf);
    let fds = OUTGOING.with(|o| o.borrow_mut().take()).unwrap_or_default();
    drop(reset);
    let bytes = result.map_err(|e| CodecError(explain(e)))?;
    if fds.len() > MAX_FDS {
        return Err(CodecError(format!(
            "the message carries {} handles; at most {MAX_FDS} fit in one message: send them in \
             several",
            fds.len()
        )));
    }
    Ok((bytes, fds))
}

/// Decodes a `T` from all of `bytes`, with the descriptors that came with them. Descriptors
/// no handle took are closed.
pub(crate) fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    fds: Vec<OwnedFd>,
) -> Result<T, CodecError> {
    let (value, rest) = decode_prefix(bytes, fds)?;
    if !rest.is_empty() {
        return Err(CodecError(format!(
            "{} bytes left over after the value: the two ends disagree on the message type",
            rest.len()
        )));
    }
    Ok(value)
}

/// Decodes a `T` from the front of `bytes`; the rest.
pub(crate) fn decode_prefix<T: DeserializeOwned>(
    bytes: &[u8],
    fds: Vec<OwnedFd>,
) -> Result<(T, &[u8]), CodecError> {
    struct Reset(Option<Vec<Option<OwnedFd>>>);
    impl Drop for Reset {
        fn drop(&mut self) {
            let previous = self.0.take();
            INCOMING.with(|i| *i.borrow_mut() = previous);
        }
    }
    let slots = fds.into_iter().map(Some).collect();
    let _reset = Reset(INCOMING.with(|i| i.borrow_mut().replace(slots)));
    HANDLE_ERROR.with(|h| h.borrow_mut().take());
    postcard::take_from_bytes(bytes).map_err(|e| match e {
        postcard::Error::SerdeDeCustom => CodecError(explain(e)),
        e => CodecError(format!(
            "{e}: the bytes do not hold the expected type (do both ends use the same message \
             type?)"
        )),
    })
}

/// A file descriptor inside a message: serializes as its index in the message's descriptor
/// list (see the module docs). For handle types to build on.
pub(crate) fn serialize_fd<S: Serializer>(fd: BorrowedFd<'_>, s: S) -> Result<S::Ok, S::Error> {
    let index = OUTGOING.with(|o| {
        o.borrow_mut().as_mut().map(|list| {
            list.push(fd.as_raw_fd());
            (list.len() - 1) as u32
        })
    });
    match index {
        Some(i) => i.serialize(s),
        None => Err(handle_error(
            "a tandem process handle (Connection, Value, Array, ...) can only be serialized by \
             tandem itself: pass it in a child's arguments or send it over a Connection",
        )),
    }
}

/// The descriptor a handle serialized with [`serialize_fd`].
pub(crate) fn deserialize_fd<'de, D: Deserializer<'de>>(d: D) -> Result<OwnedFd, D::Error> {
    let index = u32::deserialize(d)? as usize;
    let fd = INCOMING.with(|i| {
        i.borrow_mut()
            .as_mut()
            .and_then(|slots| slots.get_mut(index).and_then(Option::take))
    });
    fd.ok_or_else(|| {
        handle_de_error(
            "a tandem process handle arrived without its file descriptor (it can only be \
             deserialized by tandem, from a message that carried it)",
        )
    })
}

/// A byte buffer that serializes as one byte string (serde's `Vec<u8>` is a sequence of
/// single bytes: a 4 MiB buffer would cost millions of calls).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Bytes(pub(crate) Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Bytes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes(v))
            }
        }
        d.deserialize_byte_buf(Visit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_one_byte_string() {
        let big = Bytes(vec![7u8; 1 << 20]);
        let (encoded, _) = encode_into(&big, Vec::new()).unwrap();
        assert!(
            encoded.len() < (1 << 20) + 8,
            "length prefix plus the bytes"
        );
        assert_eq!(decode::<Bytes>(&encoded, Vec::new()).unwrap(), big);
    }

    #[test]
    fn values_round_trip() {
        let (bytes, fds) = encode_into(&(7u64, "seven".to_string()), Vec::new()).unwrap();
        assert!(fds.is_empty());
        let back: (u64, String) = decode(&bytes, Vec::new()).unwrap();
        assert_eq!(back, (7, "seven".to_string()));
    }

    #[test]
    fn a_type_mismatch_is_an_error_not_garbage() {
        let (bytes, _) = encode_into(&(1u8, 2u8, 3u8), Vec::new()).unwrap();
        let err = decode::<u8>(&bytes, Vec::new()).unwrap_err();
        assert!(err.0.contains("left over"), "{}", err.0);
        let err = decode::<String>(&[5, 1, 2], Vec::new()).unwrap_err();
        assert!(err.0.contains("expected type"), "{}", err.0);
    }

    #[test]
    fn a_handle_outside_tandem_refuses_to_serialize() {
        struct Handle;
        impl Serialize for Handle {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                // SAFETY: stdin is open for the whole test process; the borrow ends here.
                serialize_fd(unsafe { BorrowedFd::borrow_raw(0) }, s)
            }
        }
        assert!(postcard::to_allocvec(&Handle).is_err());
        let (_, fds) = encode_into(&(Handle, Handle), Vec::new()).unwrap();
        assert_eq!(fds, vec![0, 0]);
    }
}
