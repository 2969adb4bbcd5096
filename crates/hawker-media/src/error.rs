/// Why a publish, play or stop was refused. Each maps to one HTTP status in the server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    /// The body is not an SDP offer str0m can read, or offers nothing to send or receive.
    #[error("the SDP offer could not be used: {0}")]
    BadOffer(String),
    /// The offer has video, but none in a codec we forward (H.264, VP8), or not the codec the
    /// broadcast already uses.
    #[error("{0}")]
    UnsupportedCodec(String),
    /// Someone is publishing to this show and their media is flowing.
    #[error("someone is already publishing to this show")]
    AlreadyPublishing,
    /// Nobody publishes to this show, and no publisher is within the reconnect grace period.
    #[error("this show is not on air")]
    NotOnAir,
    #[error("this show has the most viewers it allows")]
    ShowFull,
    #[error("the media server has the most sessions it allows")]
    ServerFull,
    /// This client address holds as many sessions, or as many not yet connected, as one
    /// address may.
    #[error("too many video sessions from this address; close one or wait a few seconds")]
    TooManyFromClient,
    #[error("no such media session for this show")]
    UnknownSession,
    #[error("the media server stopped")]
    Stopped,
    /// The media thread did not answer in time (overloaded); nothing was started.
    #[error("the media server is too busy to answer; try again")]
    Busy,
}
