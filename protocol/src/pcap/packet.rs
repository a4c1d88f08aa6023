//! One frame's headers: link layer, IPv4/IPv6, then TCP, UDP or ICMP.
//!
//! `etherparse` does the header work; this module reduces its answer to what
//! the reassembly and the decoders need (endpoints, sequence numbers, flags,
//! payload) and maps every failure to a [`DecodeError`]. A frame that was cut
//! short by the capture (snap length) is an error, never a short payload
//! passed on as if it were whole.

use std::net::{IpAddr, SocketAddr};

use etherparse::err::packet::SliceError;
use etherparse::{NetSlice, SlicedPacket, TransportSlice};

use super::file::{linktype, Frame};
use crate::error::{DecodeError, Result};

/// TCP control flags that matter for reassembly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpFlags {
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
    pub psh: bool,
}

impl std::fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = [
            (self.syn, "SYN"),
            (self.fin, "FIN"),
            (self.rst, "RST"),
            (self.psh, "PSH"),
            (self.ack, "ACK"),
        ];
        let mut first = true;
        for (set, name) in names {
            if set {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// A TCP segment's header fields and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSegment<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    pub payload: &'a [u8],
}

/// A UDP datagram's endpoints and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpPacket<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub payload: &'a [u8],
}

/// What one frame carries, as far as Hazel cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet<'a> {
    Tcp(TcpSegment<'a>),
    Udp(UdpPacket<'a>),
    /// ICMP or ICMPv6. Error messages quote the packet that caused them; the
    /// quoted datagram is not traffic and is not passed on.
    Icmp {
        src: IpAddr,
        dst: IpAddr,
        icmp_type: u8,
        code: u8,
    },
    /// An IP fragment: its transport header may be elsewhere, not reassembled.
    IpFragment {
        src: IpAddr,
        dst: IpAddr,
    },
    /// IP carrying some other protocol (number given).
    OtherIp {
        src: IpAddr,
        dst: IpAddr,
        protocol: u8,
    },
    /// Not IP at all (ARP, LLDP, …).
    NotIp,
}

/// Takes a frame apart. A frame cut by the capture's snap length, or with
/// headers that do not parse, gives an error.
pub fn decode_frame<'a>(frame: &Frame<'a>) -> Result<Packet<'a>> {
    let sliced = match frame.linktype {
        linktype::ETHERNET => SlicedPacket::from_ethernet(frame.data),
        linktype::LINUX_SLL => SlicedPacket::from_linux_sll(frame.data),
        linktype::RAW | linktype::IPV4 | linktype::IPV6 => SlicedPacket::from_ip(frame.data),
        linktype::NULL => match frame.data.get(4..) {
            Some(ip) => SlicedPacket::from_ip(ip),
            None => return Err(DecodeError::Truncated),
        },
        _ => return Err(DecodeError::BadField("link-layer type (not supported)")),
    };
    let sliced = sliced.map_err(|e| slice_error(&e, frame.is_cut()))?;
    let (src, dst, fragmented, protocol) = match &sliced.net {
        Some(NetSlice::Ipv4(ip)) => (
            IpAddr::V4(ip.header().source_addr()),
            IpAddr::V4(ip.header().destination_addr()),
            ip.is_payload_fragmented(),
            ip.payload().ip_number.0,
        ),
        Some(NetSlice::Ipv6(ip)) => (
            IpAddr::V6(ip.header().source_addr()),
            IpAddr::V6(ip.header().destination_addr()),
            ip.is_payload_fragmented(),
            ip.payload().ip_number.0,
        ),
        Some(NetSlice::Arp(_)) | None => return Ok(Packet::NotIp),
    };
    if fragmented {
        return Ok(Packet::IpFragment { src, dst });
    }
    Ok(match sliced.transport {
        Some(TransportSlice::Tcp(tcp)) => Packet::Tcp(TcpSegment {
            src: SocketAddr::new(src, tcp.source_port()),
            dst: SocketAddr::new(dst, tcp.destination_port()),
            seq: tcp.sequence_number(),
            ack: tcp.acknowledgment_number(),
            flags: TcpFlags {
                syn: tcp.syn(),
                ack: tcp.ack(),
                fin: tcp.fin(),
                rst: tcp.rst(),
                psh: tcp.psh(),
            },
            payload: tcp.payload(),
        }),
        Some(TransportSlice::Udp(udp)) => Packet::Udp(UdpPacket {
            src: SocketAddr::new(src, udp.source_port()),
            dst: SocketAddr::new(dst, udp.destination_port()),
            payload: udp.payload(),
        }),
        Some(TransportSlice::Icmpv4(icmp)) => Packet::Icmp {
            src,
            dst,
            icmp_type: icmp.type_u8(),
            code: icmp.code_u8(),
        },
        Some(TransportSlice::Icmpv6(icmp)) => Packet::Icmp {
            src,
            dst,
            icmp_type: icmp.type_u8(),
            code: icmp.code_u8(),
        },
        None => Packet::OtherIp { src, dst, protocol },
    })
}

fn slice_error(e: &SliceError, cut: bool) -> DecodeError {
    match e {
        SliceError::Len(_) => DecodeError::Truncated,
        _ if cut => DecodeError::Truncated,
        SliceError::LinuxSll(_) => DecodeError::BadField("linux cooked capture header"),
        SliceError::Macsec(_) => DecodeError::BadField("MACsec header"),
        SliceError::Ip(_) | SliceError::Ipv4(_) => DecodeError::BadField("IPv4 header"),
        SliceError::Ipv6(_) => DecodeError::BadField("IPv6 header"),
        SliceError::Ipv4Exts(_) | SliceError::Ipv6Exts(_) => {
            DecodeError::BadField("IP extension header")
        }
        SliceError::Tcp(_) => DecodeError::BadField("TCP header"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pcap::file::Timestamp;
    use crate::pcap::writer::ethernet_frame;
    use crate::pcap::writer::Transport;

    fn frame(data: &[u8], orig: u32) -> Frame<'_> {
        Frame {
            number: 1,
            timestamp: Timestamp::default(),
            linktype: linktype::ETHERNET,
            data,
            orig_len: orig,
        }
    }

    #[test]
    fn tcp_segment_fields() {
        let a: SocketAddr = "10.0.0.1:4000".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:6346".parse().unwrap();
        let bytes = ethernet_frame(
            a,
            b,
            Transport::Tcp {
                seq: 1000,
                ack: 7,
                syn: false,
                fin: true,
                rst: false,
            },
            b"GNUTELLA",
        )
        .unwrap();
        let Packet::Tcp(seg) = decode_frame(&frame(&bytes, bytes.len() as u32)).unwrap() else {
            panic!("not tcp");
        };
        assert_eq!((seg.src, seg.dst, seg.seq, seg.ack), (a, b, 1000, 7));
        assert!(seg.flags.fin && seg.flags.ack && !seg.flags.syn);
        assert_eq!(seg.payload, b"GNUTELLA");
    }

    #[test]
    fn udp_and_cut_frames() {
        let a: SocketAddr = "[::1]:28681".parse().unwrap();
        let b: SocketAddr = "[::2]:5000".parse().unwrap();
        let bytes = ethernet_frame(a, b, Transport::Udp, b"ping").unwrap();
        let Packet::Udp(udp) = decode_frame(&frame(&bytes, bytes.len() as u32)).unwrap() else {
            panic!("not udp");
        };
        assert_eq!((udp.src, udp.dst, udp.payload), (a, b, &b"ping"[..]));
        // Every prefix is a value or an error, never a panic; the short ones are Truncated.
        for cut in 0..bytes.len() {
            let r = decode_frame(&frame(&bytes[..cut], bytes.len() as u32));
            assert!(
                r.is_err() || matches!(r, Ok(Packet::NotIp)),
                "cut at {cut}: {r:?}"
            );
        }
        assert_eq!(
            decode_frame(&frame(&bytes[..4], 60)),
            Err(DecodeError::Truncated)
        );
    }

    #[test]
    fn linux_cooked_capture_and_raw_ip() {
        use etherparse::{LinuxSllPacketType, PacketBuilder};
        let mut bytes = Vec::new();
        PacketBuilder::linux_sll(LinuxSllPacketType::OUTGOING, 6, [2, 0, 0, 0, 0, 1, 0, 0])
            .ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
            .udp(28681, 6346)
            .write(&mut bytes, b"GND")
            .unwrap();
        let sll = Frame {
            linktype: linktype::LINUX_SLL,
            ..frame(&bytes, bytes.len() as u32)
        };
        let Packet::Udp(udp) = decode_frame(&sll).unwrap() else {
            panic!("not udp");
        };
        assert_eq!(udp.src, "192.0.2.1:28681".parse().unwrap());
        assert_eq!(udp.payload, b"GND");
        // The same IP packet without a link header.
        let raw = Frame {
            linktype: linktype::RAW,
            ..frame(&bytes[16..], bytes.len() as u32 - 16)
        };
        assert_eq!(decode_frame(&raw), Ok(Packet::Udp(udp)));
        let unknown = Frame {
            linktype: 147,
            ..frame(&bytes, bytes.len() as u32)
        };
        assert_eq!(
            decode_frame(&unknown),
            Err(DecodeError::BadField("link-layer type (not supported)"))
        );
    }
}
