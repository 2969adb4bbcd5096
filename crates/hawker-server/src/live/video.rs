//! Carries the media plane's events to the rest of the server: a scheduled show goes live when
//! its host's media arrives, and every viewer's room hears whether the video is live, waiting
//! for the host, or off air.

use hawker_core::protocol::{ServerMsg, VideoState};
use hawker_media::SfuEvent;
use tokio::sync::mpsc;

use super::RoomCmd;
use crate::api::shows::start_show;
use crate::state::AppState;
use crate::store::ShowStatus;

pub async fn relay(state: AppState, mut events: mpsc::Receiver<SfuEvent>) {
    while let Some(event) = events.recv().await {
        let (show, video) = match event {
            SfuEvent::OnAir { show } => (show, VideoState::Live),
            SfuEvent::Reconnecting { show } => (show, VideoState::Reconnecting),
            SfuEvent::OffAir { show } => (show, VideoState::Offline),
            SfuEvent::SessionClosed { .. } => continue,
        };
        if video == VideoState::Live {
            match state.store.show(show).await {
                Ok(Some(s)) if s.status == ShowStatus::Scheduled => {
                    if let Err(e) = start_show(&state, s).await {
                        tracing::warn!(%show, "media arrived but the show could not start: {e:?}");
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(%show, "loading the show: {e}"),
            }
        }
        if let Some(live) = state.hub.get(show) {
            let _ = live
                .room
                .send(RoomCmd::Publish(vec![ServerMsg::Video { state: video }]))
                .await;
        }
    }
}
