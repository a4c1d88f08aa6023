//! What hostile or merely impatient peers found, kept fixed: unsolicited hits
//! re-pointing Push routes, Push floods turning us into a connection cannon,
//! a handshake followed by a burst of descriptors, redialling a host that
//! banned us, and the host cache keeping what failed.

use super::*;

fn connects(actions: &[Action]) -> Vec<SocketAddr> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Connect(addr) => Some(*addr),
            _ => None,
        })
        .collect()
}

fn push_requests(actions: &[Action]) -> Vec<PushRequest> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Event(CoreEvent::PushRequest(p)) => Some(p.clone()),
            _ => None,
        })
        .collect()
}

fn push_to(n: u32, servent: [u8; 16], file_index: u32, ip: [u8; 4]) -> Vec<u8> {
    let mut push_id = [0u8; 16];
    push_id[..4].copy_from_slice(&n.to_le_bytes());
    push_id[8] = 0xff;
    let f = wire::PushFields {
        servent_id: servent,
        file_index,
        ip,
        port: 6399,
    };
    wire::descriptor(push_id, wire::PUSH, 3, 0, &f.payload())
}

#[test]
fn an_unsolicited_query_hit_does_not_repoint_push_routes() {
    let mut rig = Rig::new(config());
    let asker = rig.attach();
    let honest = rig.attach();
    let liar = rig.attach();
    let target = [0x33; 16];
    rig.send(asker, &query(1, 3, 0, "x"));
    rig.received(honest);
    rig.received(liar);
    rig.send(honest, &query_hit(1, 2, 0, target));
    rig.received(asker);
    // A hit for a query nobody routed through us, claiming the same servent.
    rig.send(liar, &query_hit(99, 2, 0, target));
    assert_eq!(rig.core.drop_count(DropReason::NoRoute), 1);
    rig.send(asker, &push(5, 3, 0, target));
    assert_eq!(
        rig.received(honest).len(),
        1,
        "the Push follows the real hit"
    );
    assert!(rig.received(liar).is_empty(), "not the unsolicited one");
}

#[test]
fn a_final_200_followed_by_a_burst_of_descriptors_in_one_read_establishes() {
    let mut rig = Rig::new(config());
    let other = rig.attach();
    let id = 50;
    rig.core.on_connection(
        id,
        Direction::Incoming,
        "10.0.0.50:5000".parse().expect("addr"),
        rig.now,
    );
    rig.send(
        id,
        b"GNUTELLA CONNECT/0.6\r\nUser-Agent: burst\r\nX-Ultrapeer: False\r\n\r\n",
    );
    let ok = rig.drain(id);
    assert!(ok.starts_with(b"GNUTELLA/0.6 200"));
    // The final 200 and 40 KiB of queries in one read.
    let mut burst = b"GNUTELLA/0.6 200 OK\r\n\r\n".to_vec();
    let mut sent = 0;
    while burst.len() < 40 * 1024 {
        let mut qid = [0u8; 16];
        qid[..4].copy_from_slice(&(sent as u32).to_le_bytes());
        qid[8] = 0xff;
        let text = format!("burst query number {sent} with some words");
        let payload = wire::query_payload(&text, false);
        burst.extend_from_slice(&wire::descriptor(qid, wire::QUERY, 2, 0, &payload));
        sent += 1;
    }
    assert!(burst.len() > hazel_protocol::handshake::MAX_HANDSHAKE_HEAD);
    rig.send(id, &burst);
    assert!(rig.core.established_ids().contains(&id), "still linked");
    let forwarded = rig.received(other);
    assert_eq!(forwarded.len(), sent, "every query of the burst was routed");
}

#[test]
fn a_push_for_a_file_we_do_not_share_is_ignored() {
    let mut rig = Rig::new(config());
    rig.core.set_library(library());
    let a = rig.attach();
    rig.actions();
    rig.send(a, &push_to(1, OUR_ID, 999, [10, 2, 2, 2]));
    assert!(push_requests(&rig.actions()).is_empty());
    assert_eq!(rig.core.drop_count(DropReason::PushUnknownFile), 1);
    rig.send(a, &push_to(2, OUR_ID, 1, [10, 2, 2, 2]));
    assert_eq!(
        push_requests(&rig.actions()).len(),
        1,
        "a shared file: called back"
    );
}

#[test]
fn two_thousand_pushes_make_a_handful_of_callbacks_and_the_flooder_is_dropped() {
    let mut rig = Rig::new(config());
    rig.core.set_library(library());
    let flooder = rig.attach();
    let bystander = rig.attach();
    rig.actions();
    let mut callbacks = Vec::new();
    for n in 0..2000u32 {
        // A different target and file index each time, as in the report.
        let ip = [10, 9, (n / 250) as u8, (n % 250) as u8 + 1];
        rig.send(flooder, &push_to(n, OUR_ID, 1 + n % 2, ip));
        callbacks.extend(push_requests(&rig.actions()));
        if !rig.core.established_ids().contains(&flooder) {
            break;
        }
    }
    assert!(
        callbacks.len() <= 10,
        "{} connections opened for a flood",
        callbacks.len()
    );
    assert!(
        !rig.core.established_ids().contains(&flooder),
        "the flooding link is dropped"
    );
    assert!(rig.core.drop_count(DropReason::PushFlood) >= 1);
    assert!(rig.core.established_ids().contains(&bystander));
}

#[test]
fn pushes_aimed_at_one_third_party_are_called_back_at_a_bounded_rate() {
    let mut rig = Rig::new(config());
    rig.core.set_library(library());
    let peers: Vec<ConnId> = (0..6).map(|_| rig.attach()).collect();
    rig.actions();
    let mut callbacks = 0;
    // Ten minutes of Pushes from every link, all naming one victim.
    for second in 0..600u32 {
        for (i, &peer) in peers.iter().enumerate() {
            let n = second * 10 + i as u32;
            rig.send(peer, &push_to(n, OUR_ID, 1 + n % 2, [192, 0, 2, 7]));
        }
        callbacks += push_requests(&rig.actions()).len();
        rig.now += Duration::from_secs(1);
    }
    assert!(callbacks <= 3 + 60, "{callbacks} connections to one IP");
    assert!(
        callbacks >= 10,
        "honest repeats still get through: {callbacks}"
    );
}

#[test]
fn a_host_that_banned_us_is_not_dialled_until_the_ban_ends() {
    let mut cfg = config();
    cfg.peers = 1;
    let mut rig = Rig::new(cfg);
    let banner: SocketAddr = "10.0.0.2:6346".parse().expect("addr");
    let sibling: SocketAddr = "10.0.0.2:6347".parse().expect("addr");
    let mut hosts = HostCache::new(10);
    hosts.add(sibling, crate::core::hosts::HostSource::User, rig.now);
    hosts.add(
        banner,
        crate::core::hosts::HostSource::User,
        rig.now + Duration::from_millis(1),
    );
    rig.core.set_host_cache(hosts);
    rig.advance(Duration::from_secs(1));
    assert_eq!(connects(&rig.actions()), vec![banner]);
    rig.core
        .on_connection(2, Direction::Outgoing, banner, rig.now);
    rig.drain(2);
    rig.send(2, b"GNUTELLA/0.6 429 Banned for 5m 0s\r\n\r\n");
    let mut dials = Vec::new();
    for _ in 0..298 {
        rig.advance(Duration::from_secs(1));
        dials.extend(connects(&rig.actions()));
        for addr in &dials {
            rig.core.on_connect_failed(*addr, "refused", rig.now);
        }
    }
    assert!(
        dials.iter().all(|a| a.ip() != banner.ip()),
        "dialled the banning IP during its ban: {dials:?}"
    );
    for _ in 0..10 {
        rig.advance(Duration::from_secs(1));
        dials.extend(connects(&rig.actions()));
    }
    assert!(
        dials.iter().any(|a| a.ip() == banner.ip()),
        "dialled again once the ban ended"
    );
}

#[test]
fn one_ip_is_dialled_at_most_twice_a_minute() {
    let mut cfg = config();
    cfg.peers = 4;
    let mut rig = Rig::new(cfg);
    let mut hosts = HostCache::new(20);
    for port in 0..10u16 {
        hosts.add(
            SocketAddr::from(([10, 0, 0, 2], 7000 + port)),
            crate::core::hosts::HostSource::User,
            rig.now,
        );
    }
    rig.core.set_host_cache(hosts);
    let mut dials = Vec::new();
    for _ in 0..60 {
        rig.advance(Duration::from_secs(1));
        for addr in connects(&rig.actions()) {
            dials.push(addr);
            rig.core.on_connect_failed(addr, "refused", rig.now);
        }
    }
    assert_eq!(dials.len(), 2, "{dials:?}");
}

#[test]
fn a_failed_user_connect_is_reported_and_not_kept_in_the_host_cache() {
    let mut rig = Rig::new(config());
    let dead: SocketAddr = "127.0.0.1:1".parse().expect("addr");
    assert_eq!(rig.core.connect(dead, rig.now), ConnectOutcome::Dialling);
    assert_eq!(connects(&rig.actions()), vec![dead]);
    rig.core
        .on_connect_failed(dead, "connection refused", rig.now);
    let reported = rig.actions().into_iter().any(|a| {
        matches!(a, Action::Event(CoreEvent::ConnectFailed { addr, reason })
            if addr == dead && reason == "connection refused")
    });
    assert!(reported, "the user hears that it failed");
    assert!(!rig.core.host_cache().contains(&dead));
    // Our own address is neither dialled nor remembered.
    assert_eq!(
        rig.core.connect(listen(), rig.now),
        ConnectOutcome::Ourselves
    );
    assert!(connects(&rig.actions()).is_empty());
    assert!(!rig.core.host_cache().contains(&listen()));
}

#[test]
fn a_user_connect_that_works_joins_the_host_cache() {
    let mut rig = Rig::new(config());
    let peer: SocketAddr = "10.0.0.7:6346".parse().expect("addr");
    rig.core.connect(peer, rig.now);
    rig.core
        .on_connection(7, Direction::Outgoing, peer, rig.now);
    rig.drain(7);
    rig.send(7, b"GNUTELLA/0.6 200 OK\r\nX-Ultrapeer: False\r\n\r\n");
    assert!(rig.core.established_ids().contains(&7));
    assert!(rig.core.host_cache().contains(&peer));
}
