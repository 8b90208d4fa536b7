//! Bodies that stream: the browser's upload handed to the HTTP client, an answer read in part and passed on whole.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::sync::mpsc;

use crate::form::TokenFieldFilter;

/// The most the gateway holds in memory of one body: a replayable upload, a
/// form whose `token` field it removes, a JSON answer it reads for a 498.
pub(crate) const MAX_BUFFERED: usize = 1024 * 1024;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The browser's request body as the HTTP client needs it (`Send + Sync`):
/// a task reads the incoming body and hands its frames over a small channel,
/// so the upload streams with backpressure.
pub(crate) struct Upload {
    rx: mpsc::Receiver<Result<Frame<Bytes>, BoxError>>,
    hint: SizeHint,
    /// Whether the bytes differ from the browser's (so its length does too).
    rewritten: bool,
}

impl Upload {
    pub(crate) fn new(body: Body) -> Upload {
        let hint = http_body::Body::size_hint(&body);
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            let mut body = body;
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| Box::new(e) as BoxError);
                let failed = frame.is_err();
                if tx.send(frame).await.is_err() || failed {
                    break;
                }
            }
        });
        Upload {
            rx,
            hint,
            rewritten: false,
        }
    }

    /// Whether the upload's bytes differ from the browser's (a filtered
    /// form): its `Content-Length` no longer holds.
    pub(crate) fn rewritten(&self) -> bool {
        self.rewritten
    }

    /// A form body whose first bytes (`prefix`) were read already, streamed
    /// through a [`TokenFieldFilter`]: its `token` fields never leave the
    /// gateway, and only the field name being read is held. A field name too
    /// long to judge ends the upload with an error (the upstream sees it cut
    /// off, the browser a 502).
    pub(crate) fn form(prefix: Bytes, rest: Body) -> Upload {
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            let mut filter = TokenFieldFilter::default();
            let mut pending = Some(Ok(Frame::data(prefix)));
            let mut body = rest;
            loop {
                let frame = match pending.take() {
                    Some(frame) => Some(frame),
                    None => body.frame().await,
                };
                let out = match frame {
                    None => {
                        let last = filter.finish();
                        if !last.is_empty() {
                            let _ = tx.send(Ok(Frame::data(last))).await;
                        }
                        break;
                    }
                    Some(Err(e)) => Err(Box::new(e) as BoxError),
                    Some(Ok(frame)) => match frame.into_data() {
                        Ok(data) => filter
                            .feed(&data)
                            .map(Frame::data)
                            .map_err(|e| Box::new(e) as BoxError),
                        // Trailers pass as they are.
                        Err(frame) => Ok(frame),
                    },
                };
                let failed = out.is_err();
                let empty = out
                    .as_ref()
                    .is_ok_and(|f| f.data_ref().is_some_and(|d| d.is_empty()));
                if (!empty && tx.send(out).await.is_err()) || failed {
                    break;
                }
            }
        });
        // The length changes as fields go: no exact size is promised.
        Upload {
            rx,
            hint: SizeHint::default(),
            rewritten: true,
        }
    }
}

impl http_body::Body for Upload {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.rx.poll_recv(cx)
    }

    fn size_hint(&self) -> SizeHint {
        self.hint
    }
}

/// An answer whose first bytes were read (to look for a 498) followed by the rest, unread.
pub(crate) struct Prefixed<B> {
    prefix: Option<Bytes>,
    rest: Option<B>,
}

impl<B> Prefixed<B> {
    pub(crate) fn new(prefix: Bytes, rest: Option<B>) -> Self {
        Prefixed {
            prefix: (!prefix.is_empty()).then_some(prefix),
            rest,
        }
    }
}

impl<B> http_body::Body for Prefixed<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        if let Some(prefix) = self.prefix.take() {
            return Poll::Ready(Some(Ok(Frame::data(prefix))));
        }
        match self.rest.as_mut() {
            Some(rest) => Pin::new(rest).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_none() && self.rest.as_ref().is_none_or(|r| r.is_end_stream())
    }
}

/// Reads up to `limit` bytes of `body`. `Ok(Ok(all))` when it ended within the
/// limit; `Ok(Err((prefix, rest)))` when it is longer (the rest unread).
pub(crate) async fn read_up_to<B>(
    mut body: B,
    limit: usize,
) -> Result<Result<Bytes, (Bytes, B)>, B::Error>
where
    B: http_body::Body<Data = Bytes> + Unpin,
{
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            buf.extend_from_slice(&data);
            if buf.len() > limit {
                return Ok(Err((buf.freeze(), body)));
            }
        }
    }
    Ok(Ok(buf.freeze()))
}
