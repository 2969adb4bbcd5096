//! A show's life: going live (by the host, or when their video arrives), and ending.

use hawker_core::ids::ShowId;
use hawker_core::protocol::{ServerMsg, VideoState};
use hawker_media::SfuEvent;
use tokio::sync::mpsc;

use super::{ServiceError, ServiceResult, Services};
use crate::live::{CommerceCmd, RoomCmd};
use crate::store::{Show, ShowStatus};

pub async fn find_show(s: &Services, id: ShowId) -> ServiceResult<Show> {
    s.store
        .show(id)
        .await?
        .ok_or(ServiceError::NotFound("show"))
}

/// Goes live, and starts the show's owners. Refused if a product of the lineup is live in
/// another show: each variant's stock has one owner at a time.
pub async fn start_show(s: &Services, show: Show) -> ServiceResult<Show> {
    match show.status {
        ShowStatus::Live => return Ok(show),
        ShowStatus::Ended => return Err(ServiceError::ShowOver),
        ShowStatus::Scheduled => {}
    }
    if let Err(other) = s.store.go_live(show.id, s.clock.now()).await? {
        return Err(ServiceError::ProductLiveElsewhere(other));
    }
    let show = find_show(s, show.id).await?;
    s.hub.open(&show).await?;
    Ok(show)
}

/// Ends a show: a live one's sales end and its room closes (its owner stays until every
/// reservation is settled); its video stops. Ending an ended show changes nothing.
pub async fn end_show(s: &Services, show: Show) -> ServiceResult<Show> {
    match show.status {
        ShowStatus::Ended => return Ok(show),
        ShowStatus::Scheduled => {
            s.store
                .set_show_status(show.id, ShowStatus::Ended, s.clock.now())
                .await?;
        }
        ShowStatus::Live => {
            let live = s.hub.live(&show).await?;
            live.ask(|reply| CommerceCmd::EndShow { reply }).await?;
        }
    }
    s.media.end_show(show.id).await;
    find_show(s, show.id).await
}

/// Carries the media plane's events to the shows, for the life of the server: a scheduled show
/// goes live when its host's media arrives, and every viewer's room hears whether the video is
/// live, waiting for the host, or off air.
pub async fn relay_video_events(s: Services, mut events: mpsc::Receiver<SfuEvent>) {
    while let Some(event) = events.recv().await {
        let (show, video) = match event {
            SfuEvent::OnAir { show } => (show, VideoState::Live),
            SfuEvent::Reconnecting { show } => (show, VideoState::Reconnecting),
            SfuEvent::OffAir { show } => (show, VideoState::Offline),
            SfuEvent::SessionClosed { .. } => continue,
        };
        if video == VideoState::Live {
            match s.store.show(show).await {
                Ok(Some(found)) if found.status == ShowStatus::Scheduled => {
                    if let Err(e) = start_show(&s, found).await {
                        tracing::warn!(%show, "media arrived but the show could not start: {e}");
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(%show, "loading the show: {e}"),
            }
        }
        if let Some(live) = s.hub.get(show) {
            let _ = live
                .room
                .send(RoomCmd::Publish(vec![ServerMsg::Video { state: video }]))
                .await;
        }
    }
}
