"""IRC numeric replies by their Modern IRC names (RFC 1459 §6, RFC 2812 §5, Modern IRC "Numerics").

Owns: the numbers, and :class:`IRCError`, an exception that *is* a numeric reply.
Must never: format whole lines (that needs the server name and the client's nick).
"""

from __future__ import annotations

RPL_WELCOME = b"001"
RPL_YOURHOST = b"002"
RPL_CREATED = b"003"
RPL_MYINFO = b"004"
RPL_ISUPPORT = b"005"
RPL_STATSLINKINFO = b"211"
RPL_STATSCOMMANDS = b"212"
RPL_STATSKLINE = b"216"
RPL_ENDOFSTATS = b"219"
RPL_UMODEIS = b"221"
RPL_STATSUPTIME = b"242"
RPL_STATSDEBUG = b"249"
RPL_LUSERCLIENT = b"251"
RPL_LUSEROP = b"252"
RPL_LUSERUNKNOWN = b"253"
RPL_LUSERCHANNELS = b"254"
RPL_LUSERME = b"255"
RPL_ADMINME = b"256"
RPL_ADMINLOC1 = b"257"
RPL_ADMINLOC2 = b"258"
RPL_ADMINEMAIL = b"259"
RPL_LOCALUSERS = b"265"
RPL_GLOBALUSERS = b"266"
RPL_AWAY = b"301"
RPL_USERHOST = b"302"
RPL_ISON = b"303"
RPL_UNAWAY = b"305"
RPL_NOWAWAY = b"306"
RPL_WHOISUSER = b"311"
RPL_WHOISSERVER = b"312"
RPL_WHOISOPERATOR = b"313"
RPL_WHOWASUSER = b"314"
RPL_ENDOFWHO = b"315"
RPL_WHOISIDLE = b"317"
RPL_ENDOFWHOIS = b"318"
RPL_WHOISCHANNELS = b"319"
RPL_LISTSTART = b"321"
RPL_LIST = b"322"
RPL_LISTEND = b"323"
RPL_CHANNELMODEIS = b"324"
RPL_CREATIONTIME = b"329"
RPL_NOTOPIC = b"331"
RPL_TOPIC = b"332"
RPL_TOPICWHOTIME = b"333"
RPL_WHOISBOT = b"335"  # IRCv3 bot-mode
RPL_INVITELIST = b"336"  # Modern IRC: a channel one is invited to (INVITE without parameters)
RPL_ENDOFINVITELIST = b"337"
RPL_INVITING = b"341"
RPL_INVEXLIST = b"346"  # a channel's invite exceptions (+I), then RPL_ENDOFINVEXLIST
RPL_ENDOFINVEXLIST = b"347"
RPL_EXCEPTLIST = b"348"  # a channel's ban exceptions (+e), then RPL_ENDOFEXCEPTLIST
RPL_ENDOFEXCEPTLIST = b"349"
RPL_VERSION = b"351"
RPL_WHOREPLY = b"352"
RPL_NAMREPLY = b"353"
RPL_WHOSPCRPL = b"354"  # IRCv3 WHOX
RPL_LINKS = b"364"
RPL_ENDOFLINKS = b"365"
RPL_ENDOFNAMES = b"366"
RPL_BANLIST = b"367"
RPL_ENDOFBANLIST = b"368"
RPL_ENDOFWHOWAS = b"369"
RPL_INFO = b"371"
RPL_MOTD = b"372"
RPL_ENDOFINFO = b"374"
RPL_MOTDSTART = b"375"
RPL_ENDOFMOTD = b"376"
RPL_YOUREOPER = b"381"
RPL_REHASHING = b"382"
RPL_TIME = b"391"
ERR_UNKNOWNERROR = b"400"
ERR_NOSUCHNICK = b"401"
ERR_NOSUCHSERVER = b"402"
ERR_NOSUCHCHANNEL = b"403"
ERR_CANNOTSENDTOCHAN = b"404"
ERR_TOOMANYCHANNELS = b"405"
ERR_WASNOSUCHNICK = b"406"
ERR_TOOMANYTARGETS = b"407"
ERR_NOORIGIN = b"409"
ERR_NORECIPIENT = b"411"
ERR_NOTEXTTOSEND = b"412"
ERR_INPUTTOOLONG = b"417"
ERR_UNKNOWNCOMMAND = b"421"
ERR_NOMOTD = b"422"
ERR_NONICKNAMEGIVEN = b"431"
ERR_ERRONEUSNICKNAME = b"432"
ERR_NICKNAMEINUSE = b"433"
ERR_USERNOTINCHANNEL = b"441"
ERR_NOTONCHANNEL = b"442"
ERR_USERONCHANNEL = b"443"
ERR_NOTREGISTERED = b"451"
ERR_NEEDMOREPARAMS = b"461"
ERR_ALREADYREGISTERED = b"462"
ERR_PASSWDMISMATCH = b"464"
ERR_YOUREBANNEDCREEP = b"465"
ERR_INVALIDUSERNAME = b"468"
ERR_CHANNELISFULL = b"471"
ERR_UNKNOWNMODE = b"472"
ERR_INVITEONLYCHAN = b"473"
ERR_BANNEDFROMCHAN = b"474"
ERR_BADCHANNELKEY = b"475"
ERR_BADCHANMASK = b"476"
ERR_BANLISTFULL = b"478"  # a channel's +b/+e/+I lists hold MAXLIST entries already
ERR_NOPRIVILEGES = b"481"
ERR_NOOPERHOST = b"491"
ERR_CHANOPRIVSNEEDED = b"482"
ERR_UMODEUNKNOWNFLAG = b"501"
ERR_USERSDONTMATCH = b"502"
ERR_HELPNOTFOUND = b"524"
ERR_INVALIDMODEPARAM = b"696"  # Modern IRC: a mode's parameter is not one it takes
RPL_HELPSTART = b"704"
RPL_HELPTXT = b"705"
RPL_ENDOFHELP = b"706"
# IRCv3 MONITOR (https://ircv3.net/specs/extensions/monitor)
RPL_MONONLINE = b"730"
RPL_MONOFFLINE = b"731"
RPL_MONLIST = b"732"
RPL_ENDOFMONLIST = b"733"
ERR_MONLISTFULL = b"734"
ERR_INVALIDCAPCMD = b"410"


class IRCError(Exception):
    """A remote error that *is* its reply: ``numeric`` and the params after the client's nick.

    >>> err = IRCError(ERR_NOSUCHNICK, b"bob", b"No such nick/channel")
    >>> err.numeric, err.params
    (b'401', (b'bob', b'No such nick/channel'))
    """

    def __init__(self, numeric: bytes, *params: bytes) -> None:
        super().__init__(numeric, *params)
        self.numeric = numeric
        self.params = params


# IRCv3 SASL (https://ircv3.net/specs/extensions/sasl-3.1) and accounts
RPL_WHOISCERTFP = b"276"  # <client> <nick> :has client certificate fingerprint <fingerprint>
RPL_WHOISACCOUNT = b"330"  # <client> <nick> <account> :is logged in as
RPL_LOGGEDIN = b"900"  # <client> <nick>!<user>@<host> <account> :You are now logged in as <user>
RPL_LOGGEDOUT = b"901"
ERR_NICKLOCKED = b"902"
RPL_SASLSUCCESS = b"903"
ERR_SASLFAIL = b"904"
ERR_SASLTOOLONG = b"905"
ERR_SASLABORTED = b"906"
ERR_SASLALREADY = b"907"
RPL_SASLMECHS = b"908"

# IRCv3 draft/metadata-3 (https://github.com/ircv3/ircv3-specifications/pull/613)
RPL_WHOISKEYVALUE = b"760"  # <client> <target> <key> <visibility> :<value>
RPL_KEYVALUE = b"761"  # <client> <target> <key> <visibility> :<value>
RPL_KEYNOTSET = b"766"  # <client> <target> <key> :key not set
RPL_METADATASUBOK = b"770"  # <client> <key1> [<key2> ...]
RPL_METADATAUNSUBOK = b"771"  # <client> <key1> [<key2> ...]
RPL_METADATASUBS = b"772"  # <client> <key1> [<key2> ...]
RPL_METADATASYNCLATER = b"774"  # <client> <target> [<retryafter>]
